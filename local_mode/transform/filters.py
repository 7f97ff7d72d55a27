"""DataProcessing: ``InputFilter``, ``JoinSource=Input`` and ``OutputFilter`` on text records.

Records are CSV rows (``text/csv``: a row is a JSON array of its string fields) or JSON values
(``application/json``, ``application/jsonlines``). Filters are JSONPath expressions evaluated
with jsonpath-ng (``$[1:]`` drops a CSV row's first column, ``$.features`` picks a field). A join
puts the output under ``SageMakerOutput`` of a JSON object input, appends it to a JSON array
input, or appends its fields to a CSV row -- as the service documents.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

JSON_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines")


class FilterError(Exception):
    """A record cannot be filtered or joined; the message names the record and the reason."""


def record_format(content_type: str | None) -> str:
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "text/csv":
        return "csv"
    if mime in JSON_TYPES:
        return "json"
    raise FilterError(f"DataProcessing filters and joins need text/csv or JSON records; "
                      f"ContentType is {content_type!r}")


@lru_cache(maxsize=64)
def _compile(expression: str) -> Any:
    from jsonpath_ng.ext import parse

    try:
        return parse(expression)
    except Exception as exc:  # noqa: BLE001 - jsonpath_ng's parser also raises bare Exception
        raise FilterError(f"invalid JSONPath {expression!r}: {exc}") from None


def _selects_many(expression: str) -> bool:
    return any(token in expression for token in ("*", ":", ",", ".."))


def apply_path(expression: str, value: Any) -> Any:
    """The value(s) ``expression`` selects: a list when it can select several."""
    if expression.strip() == "$":
        return value
    matches = [m.value for m in _compile(expression).find(value)]
    if _selects_many(expression):
        return matches
    if not matches:
        raise FilterError(f"JSONPath {expression!r} selects nothing in {_short(value)}")
    return matches[0]


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:200] + "..."


def parse(record: bytes, fmt: str) -> Any:
    text = record.decode("utf-8")
    if fmt == "csv":
        rows = list(csv.reader([text]))
        return rows[0] if rows else []
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FilterError(f"record is not valid JSON ({exc}): {text[:200]!r}") from None


def render(value: Any, fmt: str) -> bytes:
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(value if isinstance(value, list)
                                                       else [value])
        return buffer.getvalue().encode()
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class DataProcessing:
    input_filter: str = "$"
    output_filter: str = "$"
    join_input: bool = False

    @property
    def per_record_output(self) -> bool:
        return self.join_input or self.output_filter.strip() != "$"

    @property
    def active(self) -> bool:
        return self.per_record_output or self.input_filter.strip() != "$"

    def filter_input(self, record: bytes, fmt: str) -> bytes:
        if self.input_filter.strip() == "$":
            return record
        return render(apply_path(self.input_filter, parse(record, fmt)), fmt)

    def finish(self, source: bytes, output: bytes, input_fmt: str, output_fmt: str) -> bytes:
        """Join ``output`` to its ``source`` record (if asked) and apply the output filter."""
        if not self.per_record_output:
            return output
        if self.join_input:
            value = self._join(parse(source, input_fmt), output, input_fmt, output_fmt)
            fmt = input_fmt
        else:
            value, fmt = parse(output, output_fmt), output_fmt
        if self.output_filter.strip() != "$":
            value = apply_path(self.output_filter, value)
        return render(value, fmt)

    @staticmethod
    def _join(source: Any, output: bytes, input_fmt: str, output_fmt: str) -> Any:
        try:
            result: Any = parse(output, output_fmt)
        except (FilterError, UnicodeDecodeError):
            result = output.decode("utf-8", "replace")
        if input_fmt == "csv":
            return list(source) + (list(result) if isinstance(result, list) else [result])
        if isinstance(source, dict):
            return {**source, "SageMakerOutput": result}
        if isinstance(source, list):
            return [*source, result]
        raise FilterError(f"cannot join an output to the JSON scalar {_short(source)}")
