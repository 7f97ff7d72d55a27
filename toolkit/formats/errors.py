"""The one error every format reader raises on malformed input."""

from __future__ import annotations

from toolkit.errors import OptmlError


class FormatError(OptmlError, ValueError):
    """Malformed data: names the source and where in it (byte offset or line number)."""

    def __init__(self, message: str, *, source: str = "<stream>", offset: int | None = None,
                 line: int | None = None) -> None:
        self.source = source
        self.offset = offset
        self.line = line
        self.message = message
        where = source
        if offset is not None:
            where += f" at byte {offset}"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {message}")
