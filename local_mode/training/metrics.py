"""MetricDefinitions: regexes applied to every log line, as the service does with CloudWatch."""

from __future__ import annotations

import io
import json
import math
import re
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from local_mode.errors import ValidationException
from local_mode.state import append_private
from local_mode.training.spec import MetricDefinition


class MetricExtractor:
    """Parse metric values out of log lines; keep the series on disk and the last values.

    Every line of a job's output passes through :meth:`feed` (a job may print gigabytes), so a
    line costs only the regex searches unless it matches, and a matching line's points go to
    the series in one write: each point's JSON is formatted from a prefix made once per metric
    (the bytes :func:`json.dumps` would make), and only the last value of each metric is kept
    in memory, whatever the number of points.
    """

    def __init__(self, definitions: Sequence[MetricDefinition], series_file: Path) -> None:
        self._patterns: list[tuple[str, str, re.Pattern[str]]] = []
        for definition in definitions:
            try:
                pattern = re.compile(definition.regex)
            except re.error as exc:
                raise ValidationException(
                    f"MetricDefinitions {definition.name!r}: invalid Regex: {exc}") from None
            prefix = f'{{"MetricName": {json.dumps(definition.name)}, "Value": '
            self._patterns.append((definition.name, prefix, pattern))
        self._file: TextIO | None = None
        self._path = series_file
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, datetime]] = {}

    def feed(self, line: str, when: datetime) -> None:
        points: list[tuple[str, str, float]] = []
        for name, prefix, pattern in self._patterns:
            match = pattern.search(line)
            if match is None:
                continue
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if math.isnan(value) or math.isinf(value):
                continue
            points.append((name, prefix, value))
        if not points:
            return
        stamp = when.isoformat()  # digits and -:.+T only: nothing JSON would escape
        # float.__repr__ is json.dumps' spelling of a finite float
        text = "".join(f'{prefix}{value!r}, "Timestamp": "{stamp}"}}\n'
                       for _, prefix, value in points)
        with self._lock:
            if self._file is None:
                self._file = io.TextIOWrapper(append_private(self._path), encoding="utf-8")
            self._file.write(text)
            self._file.flush()  # whole lines only: the series is read while the job runs
            for name, _, value in points:
                self._last[name] = (value, when)

    @property
    def final(self) -> dict[str, dict[str, Any]]:
        """The last point of each metric that had one, by name."""
        with self._lock:
            return {name: {"MetricName": name, "Value": value, "Timestamp": when}
                    for name, (value, when) in self._last.items()}

    def final_metric_data(self) -> list[dict[str, Any]]:
        return list(self.final.values())

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_series(series_file: Path) -> list[dict[str, Any]]:
    if not series_file.exists():
        return []
    with series_file.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
