"""The query protocol of STS: a form-encoded POST (``Action=GetCallerIdentity&Version=...``)
answered in XML.

The SageMaker SDK asks STS for the account a session belongs to (to name its default bucket);
that is the only reason local mode speaks this protocol, so the writer handles what STS's
operations answer with: a result structure of scalar members, written in the model's order and
under its ``resultWrapper``, and the service's ``<ErrorResponse>``.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from local_mode.client_base import LocalClient
from local_mode.wire.codec import encode
from local_mode.wire.faults import Fault, fault_of, unknown_operation


class QueryService:
    """One query-protocol service answered by ``client``."""

    def __init__(self, client: LocalClient) -> None:
        self.client = client
        self.model = client.meta.service_model
        self.signing_name = self.model.signing_name
        self.namespace = self.model.metadata["xmlNamespace"]

    def handle(self, body: bytes) -> Response:
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return self.error(Fault("MalformedQueryString", "the form body is not UTF-8"))
        action = form.pop("Action", [""])[0]
        form.pop("Version", None)
        method = self.client.method_of(action)
        if method is None:  # the query protocol's code for it
            known = unknown_operation(self.model.service_name, action or "(none)",
                                      list(self.client.OPERATIONS.values()))
            return self.error(Fault("InvalidAction", known.message))
        request = {key: values[0] for key, values in form.items()}
        try:
            result = getattr(self.client, method)(**request)
        except Exception as exc:  # noqa: BLE001 - every failure is answered as the service's
            return self.error(fault_of(exc, self.model))
        output = self.model.operation_model(action).output_shape
        members = encode({k: v for k, v in result.items() if k != "ResponseMetadata"}, output)
        wrapper = output.serialization.get("resultWrapper", f"{action}Result")
        inner = "".join(f"<{name}>{escape(str(_scalar(members[name])))}</{name}>"
                        for name in output.members if name in members)
        return _xml(200, f'<{action}Response xmlns="{self.namespace}"><{wrapper}>{inner}'
                         f"</{wrapper}><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
                         f"</ResponseMetadata></{action}Response>")

    def error(self, fault: Fault) -> Response:
        """``fault`` as the query protocol writes an error."""
        kind = "Sender" if fault.sender else "Receiver"
        return _xml(fault.status,
                    f'<ErrorResponse xmlns="{self.namespace}"><Error><Type>{kind}</Type>'
                    f"<Code>{escape(fault.code)}</Code><Message>{escape(fault.message)}"
                    f"</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _xml(status: int, text: str) -> Response:
    return Response(text, status=status, headers={"Content-Type": "text/xml"})
