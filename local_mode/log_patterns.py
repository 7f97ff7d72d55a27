"""CloudWatch Logs filter patterns for unstructured events, parsed and matched locally.

FilterLogEvents takes the service's filter-pattern syntax, and the SageMaker SDK and user code
pass it through unchanged, so local mode has to answer with the events the service would. The
term syntax (terms, ``"quoted phrases"``, ``?alternatives``, ``-exclusions``) is all that
unstructured log lines need and is evaluated here; the JSON, space-delimited and regex syntaxes
are refused rather than matched as plain text, which would silently return the wrong events.

The parser is pure: text in, a :class:`FilterPattern` or the service's
InvalidParameterException out. It lives apart from the client so it can be read, and tested,
without log files or groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from local_mode.errors import error_class

InvalidParameterException = error_class("InvalidParameterException")

__all__ = ["FilterPattern", "InvalidParameterException", "parse_filter_pattern"]


@dataclass(frozen=True)
class FilterPattern:
    """A filter pattern for unstructured events: an event matches when it contains every
    ``required`` term, none of the ``excluded`` ones and, if there are any, one of ``any_of``.
    Terms match as case-sensitive substrings."""

    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def matches(self, message: str) -> bool:
        return (all(term in message for term in self.required)
                and not any(term in message for term in self.excluded)
                and (not self.any_of or any(term in message for term in self.any_of)))


def parse_filter_pattern(text: str) -> FilterPattern:
    """CloudWatch's term syntax: space-separated terms that must all appear, ``"quoted
    phrases"``, ``?term`` alternatives (one of them must appear) and ``-term`` exclusions.
    JSON (``{ ... }``), space-delimited (``[ ... ]``) and regex (``% ... %``) patterns are
    InvalidParameterException, as is a pattern that does not parse: local mode does not
    evaluate them, and matching them as plain text would return the wrong events."""
    kinds: dict[str, list[str]] = {"": [], "?": [], "-": []}
    at, size = 0, len(text)
    while at < size:
        if text[at].isspace():
            at += 1
            continue
        kind = ""
        if text[at] in "?-":
            kind, at = text[at], at + 1
            if at == size or text[at].isspace():
                raise _bad_pattern(text, f"{kind!r} must be followed by a term")
        if text[at] == '"':
            close = text.find('"', at + 1)
            if close < 0:
                raise _bad_pattern(text, "a quoted phrase has no closing quote")
            term, at = text[at + 1:close], close + 1
            if at < size and not text[at].isspace():
                raise _bad_pattern(text, "a quoted phrase must be followed by a space")
        else:
            end = at
            while end < size and not text[end].isspace():
                end += 1
            term, at = text[at:end], end
            if term[0] in "{[%":
                raise InvalidParameterException(
                    f"Unsupported filter pattern {text!r}: local mode evaluates terms, "
                    '"quoted phrases", ?alternatives and -exclusions, not JSON ({ ... }), '
                    "space-delimited ([ ... ]) or regex (% ... %) patterns")
            if '"' in term:
                raise _bad_pattern(text, f"a quote inside the term {term!r}")
        kinds[kind].append(term)
    return FilterPattern(tuple(kinds[""]), tuple(kinds["?"]), tuple(kinds["-"]))


def _bad_pattern(text: str, why: str) -> Exception:
    return InvalidParameterException(f"Invalid filter pattern {text!r}: {why}")
