"""The List* operations' filters, sort and pages, driven by botocore's model of each operation.

Every request member the model defines for an implemented List* operation is honoured: a
member this module does not know makes :func:`unhandled_members` name it (a test walks the
implemented operations), rather than being validated and then silently ignored. Defaults are the
service's: SortBy and SortOrder as the model's documentation states them ("The default is ..."),
MaxResults 10. NextToken is opaque to callers; a token this module did not issue is a
ValidationException, as the service answers.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from botocore.utils import parse_to_aware_datetime

from local_mode.errors import ValidationException
from local_mode.validation import operation_model

DEFAULT_MAX_RESULTS = 10
"""The service's documented default page size."""

TIME_FILTERS = {"CreationTimeAfter": ("CreationTime", 1), "CreationTimeBefore": ("CreationTime", -1),
                "LastModifiedTimeAfter": ("LastModifiedTime", 1),
                "LastModifiedTimeBefore": ("LastModifiedTime", -1)}
"""Filter member -> (summary member, +1: strictly after / -1: strictly before)."""

EQUALS_FILTERS: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    "StatusEquals": lambda item, status_key: item.get(status_key),
    "WarmPoolStatusEquals": lambda item, _: (item.get("WarmPoolStatus") or {}).get("Status"),
    "TrainingPlanArnEquals": lambda item, _: item.get("TrainingPlanArn"),
}
"""Filter member -> what of a summary it must equal (local jobs never have a warm pool, so
``WarmPoolStatusEquals`` matches none of them, as on the service for jobs without one)."""

PAGING = frozenset({"NextToken", "MaxResults", "SortBy", "SortOrder", "NameContains"})
HANDLED = PAGING | set(TIME_FILTERS) | set(EQUALS_FILTERS)
_TOKEN_PREFIX = "optml-local:"  # noqa: S105 - a paging token's prefix, not a credential


def unhandled_members(operation: str) -> list[str]:
    """Request members of ``operation`` this module would ignore (should be none)."""
    return sorted(set(operation_model(operation).input_shape.members) - HANDLED)


@lru_cache(maxsize=64)
def documented_default(operation: str, member: str) -> str | None:
    """``member``'s default as the model's documentation states it ("The default is X.")."""
    shape = operation_model(operation).input_shape.members.get(member)
    if shape is None:
        return None
    found = re.search(r"[Tt]he default is\s*(?:<code>)?(\w+)", shape.documentation or "")
    return found.group(1) if found else None


def list_page(operation: str, items: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
              *, result_key: str, name_key: str, status_key: str = "") -> dict[str, Any]:
    """``operation``'s response for ``params`` over all ``items`` (its summaries): the page
    under ``result_key``, and ``NextToken`` when more follow."""
    unknown = sorted(set(params) - HANDLED)
    if unknown:  # the model has a member this module does not honour: refuse, never ignore
        raise ValidationException(f"{', '.join(unknown)}: local mode does not honour this "
                                  "filter yet", operation)
    selected = [item for item in items if _matches(item, params, name_key, status_key)]
    sort_by = params.get("SortBy") or documented_default(operation, "SortBy") or "CreationTime"
    order = params.get("SortOrder") or documented_default(operation, "SortOrder") or "Ascending"
    key = {"Name": name_key, "Status": status_key}.get(sort_by, sort_by)
    selected.sort(key=lambda item: (_sortable(item.get(key)), item[name_key]),
                  reverse=order == "Descending")
    start = _offset(params.get("NextToken"))
    limit = int(params.get("MaxResults") or DEFAULT_MAX_RESULTS)
    page: dict[str, Any] = {result_key: list(selected[start:start + limit])}
    if start + limit < len(selected):
        page["NextToken"] = _token(start + limit)
    return page


def _matches(item: Mapping[str, Any], params: Mapping[str, Any], name_key: str,
             status_key: str) -> bool:
    contains = params.get("NameContains")
    # resource names are case-insensitive on the service (ARNs hold them lower-cased)
    if contains and contains.lower() not in item[name_key].lower():
        return False
    for member, (field, sign) in TIME_FILTERS.items():
        if params.get(member) is None:
            continue
        bound = parse_to_aware_datetime(params[member])
        stamp = item.get(field)
        if stamp is None or not ((stamp > bound) if sign > 0 else (stamp < bound)):
            return False
    for member, value_of in EQUALS_FILTERS.items():
        if params.get(member) is not None and value_of(item, status_key) != params[member]:
            return False
    return True


def _sortable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    return "" if value is None else value


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if text.startswith(_TOKEN_PREFIX):
            return max(0, int(text[len(_TOKEN_PREFIX):]))
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValidationException(f"Invalid pagination token {token!r}")
