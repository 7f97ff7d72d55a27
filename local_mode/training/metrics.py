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
    """Parse metric values out of log lines; keep the series on disk and the last values."""

    def __init__(self, definitions: Sequence[MetricDefinition], series_file: Path) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for definition in definitions:
            try:
                self._patterns.append((definition.name, re.compile(definition.regex)))
            except re.error as exc:
                raise ValidationException(
                    f"MetricDefinitions {definition.name!r}: invalid Regex: {exc}") from None
        self._file: TextIO | None = None
        self._path = series_file
        self._lock = threading.Lock()
        self.final: dict[str, dict[str, Any]] = {}

    def feed(self, line: str, when: datetime) -> None:
        if not self._patterns:
            return
        for name, pattern in self._patterns:
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
            point = {"MetricName": name, "Value": value, "Timestamp": when.isoformat()}
            with self._lock:
                if self._file is None:
                    self._file = io.TextIOWrapper(append_private(self._path),
                                                  encoding="utf-8")
                self._file.write(json.dumps(point) + "\n")
                self._file.flush()
                self.final[name] = {"MetricName": name, "Value": value, "Timestamp": when}

    def final_metric_data(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(v) for v in self.final.values()]

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
