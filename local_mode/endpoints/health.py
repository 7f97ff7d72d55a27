"""What a container's ``GET /ping`` answer says beyond healthy or not.

optml's server answers 503 with ``{"error": "model_load_failed", "message": ...}`` when its model
can never load. Endpoints and transform jobs both read it, so a deploy or a transform job fails at
once with the container's own reason instead of waiting out the start-up timeout.
"""

from __future__ import annotations

import json

LOAD_FAILED_MARK = b"model_load_failed"
REASON_CHARS = 1024


def load_failure(status: int, body: bytes) -> str | None:
    """The container's reason when its ``/ping`` answer says the model can never load, else
    None (healthy, or not ready yet: either way, keep asking)."""
    if status != 503 or LOAD_FAILED_MARK not in body[:4096]:
        return None
    try:
        detail = json.loads(body)
    except ValueError:
        detail = None
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)[:REASON_CHARS]
    return body[:REASON_CHARS].decode("utf-8", "replace")
