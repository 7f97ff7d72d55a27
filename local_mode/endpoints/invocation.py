"""What an InvokeEndpoint call is on the wire, for every party that handles one: the runtime
client sends these header fields, the router reads, forwards and echoes them, a transform job
sends the first two to its containers. One table, so a field added here is carried end to end.

Names are bytes, as the router's parser hands them over and as they are written; ``key`` is the
lower-case form parsers index by, ``name`` the same as text (how ``http.client`` and botocore
report response headers).
"""

from __future__ import annotations

MAX_REQUEST_BYTES = 6 * 1024 * 1024
"""The service's real-time payload limit (6291456 bytes)."""
INVOCATION_TIMEOUT = 60.0
"""How long the service lets the containers take to answer one invocation (a pipeline's
containers and a multi-model load share it); past it the caller gets ModelError, status 0."""


class Field:
    """One header field: ``wire`` as written, ``key``/``name`` lower-case (bytes/text),
    ``prefix`` the start of its header line."""

    __slots__ = ("wire", "key", "name", "prefix")

    def __init__(self, wire: str) -> None:
        self.wire = wire.encode("latin-1")
        self.key = self.wire.lower()
        self.name = wire.lower()
        self.prefix = self.wire + b": "

    def line(self, value: bytes) -> bytes:
        """The whole header line, CRLF included."""
        return b"%s%s\r\n" % (self.prefix, value)

    def __repr__(self) -> str:
        return f"Field({self.wire.decode('latin-1')!r})"


CONTENT_TYPE = Field("Content-Type")
ACCEPT = Field("Accept")
CUSTOM_ATTRIBUTES = Field("X-Amzn-SageMaker-Custom-Attributes")
TARGET_MODEL = Field("X-Amzn-SageMaker-Target-Model")
TARGET_VARIANT = Field("X-Amzn-SageMaker-Target-Variant")
INFERENCE_ID = Field("X-Amzn-SageMaker-Inference-Id")
INVOKED_VARIANT = Field("x-Amzn-Invoked-Production-Variant")
ERROR_TYPE = Field("x-amzn-ErrorType")

REQUEST_MEMBERS: tuple[tuple[str, Field], ...] = (
    ("ContentType", CONTENT_TYPE), ("Accept", ACCEPT), ("CustomAttributes", CUSTOM_ATTRIBUTES),
    ("TargetModel", TARGET_MODEL), ("TargetVariant", TARGET_VARIANT),
    ("InferenceId", INFERENCE_ID))
"""InvokeEndpoint's request members that travel as header fields."""
PASSED_THROUGH: tuple[Field, ...] = (CUSTOM_ATTRIBUTES, INFERENCE_ID)
"""Forwarded to every container unchanged (Content-Type and Accept are forwarded too, but a
pipeline rewrites them from stage to stage)."""
ECHOED: tuple[Field, ...] = (CONTENT_TYPE, CUSTOM_ATTRIBUTES)
"""Copied from the (last) container's answer into the caller's."""
