"""Smithy RPC v2 CBOR (CloudWatch's first protocol) and its awsJson1_0 form, in front of a
local client.

botocore speaks the first protocol of a service's ``protocols`` list that it supports, and for
``cloudwatch`` that is ``smithy-rpc-v2-cbor``: ``POST /service/<targetPrefix>/operation/<Op>``
with ``smithy-protocol: rpc-v2-cbor`` and the request as a CBOR map, timestamps as tag 1 (epoch
seconds), blobs as byte strings. The answer is a CBOR map of the output shape (no body for an
operation without output); an error is a CBOR map with ``__type`` and ``message``. Older SDKs
send the same operations as awsJson1_0 (``X-Amz-Target: <targetPrefix>.<Op>``, JSON bodies with
epoch-second timestamps and base64 blobs), and older still its query protocol (a form POST
``Action=<Op>&Version=2010-08-01&MetricData.member.1.MetricName=...`` answered in XML): this
module answers all three, from the same local client.

CloudWatch is ``awsQueryCompatible``: its errors keep the codes of its query-protocol days
(``InvalidParameterValue``, ``ResourceNotFound``, ``ValidationError``), which botocore reads from
the ``x-amzn-query-error: <code>;<Sender|Receiver>`` header, while ``__type`` names the error
shape (``InvalidParameterValueException``). Both are written here, so botocore raises the same
``client.exceptions.X`` over every protocol.

CBOR is read with ``cbor2`` (a maintained, fuzzed C decoder with a nesting bound and a refusal
of hash-colliding keys; botocore's own CBOR reader is part of its response parser, not an API,
and reads nothing a server must refuse), restricted to the Smithy data model: maps with text
keys, arrays, text and byte strings, integers, floats, booleans, null and tag 1. Anything
else, a truncated item or trailing bytes is the service's ``SerializationException`` (400).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import cbor2
from botocore.exceptions import ParamValidationError
from botocore.model import Shape
from botocore.utils import parse_timestamp
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wrappers import Response

from local_mode.client_base import LocalClient
from local_mode.wire.codec import SerializationError, decode, encode, walk
from local_mode.wire.faults import Fault, fault_of, unknown_operation
from local_mode.wire.json_rpc import read_json_object

CBOR_TYPE = "application/cbor"
JSON_TYPE = "application/x-amz-json-1.0"
PROTOCOL_HEADER = "smithy-protocol"
PROTOCOL = "rpc-v2-cbor"
RPC_V2_PATH = re.compile(r"/service/([A-Za-z0-9_.]+)/operation/([A-Za-z0-9_]+)")
"""The request path of RPC v2 (the service's ``targetPrefix`` and the operation's name)."""
MAX_QUERY_FIELDS = 100_000
"""Bound on the fields of a query-protocol form (a PutMetricData at its limits has about 60 000)."""
MAX_DEPTH = 64
"""Bound on nesting in a request: CloudWatch's deepest input (GetMetricData's MetricStat) is 6
levels down; a deeper body is refused before anything walks it."""
_UTC = timezone.utc
# cbor2 turns these tags into Python objects on its own (dates as text, big numbers, shared and
# cyclic references, sets, regular expressions, ...); RPC v2 has none of them.
_SEMANTIC_TAGS = (0, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 100, 256, 258, 260, 261, 1004,
                  55799)


def rpc_v2_operation(method: str, path: str) -> tuple[str, str] | None:
    """``(service, operation)`` when ``method path`` has the shape of an RPC v2 request."""
    if method != "POST":
        return None
    match = RPC_V2_PATH.fullmatch(path)
    return (match.group(1), match.group(2)) if match else None


class RpcV2Service:
    """One RPC v2 CBOR service (and its awsJson1_0 form) answered by ``client``."""

    def __init__(self, client: LocalClient) -> None:
        self.client = client
        self.model = client.meta.service_model
        self.service_name = self.model.metadata["targetPrefix"]
        self.prefix = self.service_name + "."
        self.signing_name = self.model.signing_name
        self.query_compatible = "awsQueryCompatible" in self.model.metadata
        self._shapes = {shape.name: shape for shape in self.model.error_shapes}
        self._by_code: dict[str, Shape] = {}
        for shape in self.model.error_shapes:
            self._by_code.setdefault(shape.error_code or shape.name, shape)

    def operation_of(self, target: str) -> str | None:
        """The operation an awsJson1_0 ``X-Amz-Target`` value names, if it is this service's."""
        return target[len(self.prefix):] if target.startswith(self.prefix) else None

    # -- the two encodings -------------------------------------------------------------------
    def handle_cbor(self, operation: str, headers: EnvironHeaders, body: bytes) -> Response:
        """An RPC v2 CBOR request (already routed to this service) answered in CBOR."""
        if headers.get(PROTOCOL_HEADER, "").strip() != PROTOCOL:
            return self.error(Fault("SerializationException", f"an RPC v2 request carries the "
                                    f"header {PROTOCOL_HEADER}: {PROTOCOL}"))
        try:
            request = read_cbor(body)
        except SerializationError as exc:
            return self.error(fault_of(exc, self.model))
        result = self._run(operation, request, from_cbor)
        if isinstance(result, Fault):
            return self.error(result)
        shape = self.model.operation_model(operation).output_shape
        if shape is None:  # the protocol's answer to an operation without output: no body
            answer = Response(b"", status=200, headers=self._headers(None))
            del answer.headers["Content-Type"]
            return answer
        return Response(write_cbor(to_cbor(result, shape)), status=200,
                        headers=self._headers(CBOR_TYPE))

    def handle_json(self, operation: str, body: bytes) -> Response:
        """An awsJson1_0 request answered in JSON."""
        try:
            request = read_json_object(body)
        except SerializationError as exc:
            return self.json_error(fault_of(exc, self.model))
        result = self._run(operation, request, decode)
        if isinstance(result, Fault):
            return self.json_error(result)
        shape = self.model.operation_model(operation).output_shape
        payload = encode(result, shape) if shape is not None else {}
        return Response(json.dumps(payload, separators=(",", ":")), status=200,
                        headers=self._headers(JSON_TYPE, smithy=False))

    def handle_query(self, body: bytes) -> Response:
        """A query-protocol request (a form POST naming its ``Action``) answered in XML."""
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                  strict_parsing=False, max_num_fields=MAX_QUERY_FIELDS))
        except (UnicodeDecodeError, ValueError):
            return self.query_error(Fault("MalformedQueryString", "the form body is not a "
                                          "UTF-8 query string within its field limit"))
        operation = form.pop("Action", "")
        form.pop("Version", None)
        if self.client.method_of(operation) is None:
            known = unknown_operation(self.model.service_name, operation or "(none)",
                                      list(self.client.OPERATIONS.values()))
            return self.query_error(Fault("InvalidAction", known.message))
        result = self._run(operation, form, from_query)
        if isinstance(result, Fault):
            if result.code == "SerializationException":
                result = Fault("MalformedQueryString", result.message)
            return self.query_error(result)
        output = self.model.operation_model(operation).output_shape
        request_id = str(uuid.uuid4())
        return _xml(200, query_xml(operation, self._namespace, result, output, request_id),
                    request_id)

    # -- errors ------------------------------------------------------------------------------
    def query_error(self, fault: Fault) -> Response:
        """``fault`` as the query protocol writes an error (its code the query code)."""
        shape = self._modeled(fault.code)
        code = (shape.error_code if shape is not None else None) or fault.code
        kind = "Sender" if fault.sender else "Receiver"
        request_id = str(uuid.uuid4())
        return _xml(self._status(fault),
                    f'<ErrorResponse xmlns="{self._namespace}"><Error><Type>{kind}</Type>'
                    f"<Code>{escape(code)}</Code><Message>{escape(fault.message)}</Message>"
                    f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>", request_id)

    @property
    def _namespace(self) -> str:
        return str(self.model.metadata.get("xmlNamespace", ""))

    def error(self, fault: Fault) -> Response:
        """``fault`` as RPC v2 CBOR writes an error."""
        kind, headers = self._error_headers(fault, CBOR_TYPE)
        return Response(write_cbor({"__type": kind, "message": fault.message, **fault.members}),
                        status=self._status(fault), headers=headers)

    def json_error(self, fault: Fault) -> Response:
        """``fault`` as awsJson1_0 writes an error."""
        kind, headers = self._error_headers(fault, JSON_TYPE)
        return Response(json.dumps({"__type": kind, "message": fault.message, **fault.members}),
                        status=self._status(fault), headers=headers)

    def _error_headers(self, fault: Fault, content_type: str) -> tuple[str, dict[str, str]]:
        """The ``__type`` (the error shape's name) and the headers of an error answer: for a
        query-compatible service, ``x-amzn-query-error`` carries the code botocore raises by
        (the shape's query code: ``InvalidParameterValueException`` is raised as
        ``InvalidParameterValue``)."""
        shape = self._modeled(fault.code)
        kind = shape.name if shape is not None else fault.code
        headers = self._headers(content_type, smithy=content_type == CBOR_TYPE)
        if self.query_compatible:
            code = (shape.error_code if shape is not None else None) or fault.code
            headers["x-amzn-query-error"] = f"{code};{'Sender' if fault.sender else 'Receiver'}"
        return kind, headers

    def _modeled(self, code: str) -> Shape | None:
        """The error shape a code stands for: by its name first (``ResourceNotFound`` is also
        the query code of ``DashboardNotFoundError``), else by its query code."""
        return self._shapes.get(code) or self._by_code.get(code)

    def _status(self, fault: Fault) -> int:
        """The model's HTTP status for a modeled error (``ResourceNotFound`` is 404), else the
        fault's."""
        shape = self._modeled(fault.code)
        declared = (shape.metadata.get("error") or {}).get("httpStatusCode") \
            if shape is not None else None
        return int(declared) if isinstance(declared, int) and fault.sender else fault.status

    def _headers(self, content_type: str | None, *, smithy: bool = True) -> dict[str, str]:
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if smithy:
            headers[PROTOCOL_HEADER] = PROTOCOL
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    # -- running -----------------------------------------------------------------------------
    def _run(self, operation: str, request: dict[str, Any],
             decoder: Any) -> dict[str, Any] | Fault:
        """The local client's answer to ``operation`` (without its ResponseMetadata), or the
        fault it stands for."""
        method = self.client.method_of(operation)
        if method is None:
            return unknown_operation(self.model.service_name, operation,
                                     list(self.client.OPERATIONS.values()))
        shape = self.model.operation_model(operation).input_shape
        try:
            decoded = decoder(request, shape)
            assert isinstance(decoded, dict)
            unknown = sorted(set(decoded) - set(shape.members if shape else ()))
            if unknown:  # as botocore would refuse them, and never bound to the method's own
                raise ParamValidationError(report=f"Unknown parameter(s) in input: "
                                                  f"{', '.join(unknown)}")
            result = getattr(self.client, method)(**decoded)
        except Exception as exc:  # noqa: BLE001 - every failure is answered as the service's
            return fault_of(exc, self.model)
        result.pop("ResponseMetadata", None)
        return dict(result)


# -- CBOR -----------------------------------------------------------------------------------------

def read_cbor(body: bytes) -> dict[str, Any]:
    """The request map of a CBOR body (an empty body is an empty request), within the Smithy
    data model; :class:`SerializationError` for anything else."""
    if not body:
        return {}
    stream = io.BytesIO(body)
    decoder = cbor2.CBORDecoder(stream, tag_hook=_refuse_tag, max_depth=MAX_DEPTH,
                                strict_hashable_types=True,
                                semantic_decoders=dict.fromkeys(_SEMANTIC_TAGS, _refuse))
    try:
        value = decoder.decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, MemoryError, RecursionError):
        raise SerializationError("the request body is not valid CBOR") from None
    if stream.tell() != len(body):
        raise SerializationError(f"the request body has {len(body) - stream.tell()} bytes "
                                 "after its CBOR data item")
    if not isinstance(value, dict):
        raise SerializationError("the request body must be a CBOR map")
    _check_model(value, 0)
    return value


def write_cbor(value: Any) -> bytes:
    """``value`` (maps, lists, strings, bytes, numbers, booleans, aware datetimes) as CBOR,
    datetimes as tag 1 epoch seconds."""
    return bytes(cbor2.dumps(value, datetime_as_timestamp=True, timezone=_UTC))


def from_cbor(value: Any, shape: Shape | None) -> Any:
    """A decoded CBOR request value in boto3's Python form, walked by its shape: timestamps as
    aware datetimes (tag 1, or a bare number of epoch seconds), nulls in structures dropped (the
    protocol's absent member)."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {name: from_cbor(item, members.get(name)) for name, item in value.items()
                if item is not None}
    if kind == "list" and isinstance(value, list):
        return [from_cbor(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: from_cbor(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=_UTC)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return datetime.fromtimestamp(value, _UTC)
            except (ValueError, OverflowError, OSError):
                raise SerializationError(f"{value!r} is not a timestamp") from None
    return value


def to_cbor(value: Any, shape: Shape | None) -> Any:
    """A boto3-shaped response value ready for :func:`write_cbor`: timestamps as aware
    datetimes, unset members left out."""
    return walk(value, shape, _cbor_leaf)


def _cbor_leaf(value: Any, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "timestamp":
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=_UTC)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                math.isfinite(value):
            return datetime.fromtimestamp(value, _UTC)
    if kind == "blob" and isinstance(value, bytearray):
        return bytes(value)
    return value


def _check_model(value: Any, depth: int) -> None:
    """Refuse what the Smithy data model has no place for (cbor2 hands back what RPC v2 does
    not allow: undefined, simple values, keys that are not text)."""
    if depth > MAX_DEPTH:
        raise SerializationError("the request body nests too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError("a CBOR map key in the request is not a text string")
            _check_model(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_model(item, depth + 1)
    elif value is not None and not isinstance(value, (str, bytes, bool, int, float, datetime)):
        raise SerializationError(f"the request holds a CBOR {type(value).__name__}, which "
                                 "RPC v2 does not use")


def _refuse_tag(_decoder: Any, tag: Any) -> Any:
    """cbor2's hook for a tag it has no decoder for: none of them is RPC v2's (tag 1, the one
    it uses, cbor2 decodes itself)."""
    raise ValueError(f"CBOR tag {tag.tag} is not used by RPC v2")


def _refuse(_decoder: Any) -> Any:
    raise ValueError("a CBOR tag RPC v2 does not use")


# -- the query protocol ---------------------------------------------------------------------------

def from_query(form: Mapping[str, str], shape: Shape | None) -> dict[str, Any]:
    """The request members of a query form (``Dimensions.member.1.Name=...``), walked by the
    input shape as botocore's query serializer flattens them."""
    tree: dict[str, Any] = {}
    for key, value in form.items():
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SerializationError(f"{key}: {part} is both a value and a container")
            node = child
        if isinstance(node.get(last), dict):
            raise SerializationError(f"{key} is both a value and a container")
        node[last] = value
    if shape is None:
        return tree
    parsed = _from_query_node(tree, shape, "")
    assert isinstance(parsed, dict)
    return parsed


def _from_query_node(node: Any, shape: Shape, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(node, dict):
            raise SerializationError(f"{path or 'the request'} is a structure")
        by_wire = {member.serialization.get("name", name): (name, member)
                   for name, member in shape.members.items()}
        parsed: dict[str, Any] = {}
        for key, item in node.items():
            name, member = by_wire.get(key, (key, None))
            # a member the shape does not know keeps its key: validation names it
            parsed[name] = item if member is None else \
                _from_query_node(item, member, f"{path}.{key}" if path else key)
        return parsed
    if kind in ("list", "map"):
        if node == "":  # botocore's empty list
            return [] if kind == "list" else {}
        if not isinstance(node, dict):
            raise SerializationError(f"{path} is a {kind}")
        if not shape.serialization.get("flattened"):
            wrapper = shape.member.serialization.get("name", "member") if kind == "list" \
                else "entry"
            if set(node) != {wrapper}:
                raise SerializationError(f"{path}: the {kind}'s items are {path}.{wrapper}.N")
            node = node[wrapper]
            if not isinstance(node, dict):
                raise SerializationError(f"{path}.{wrapper} is a {kind}")
        items = [node[index] for index in _indexes(node, path)]
        if kind == "list":
            return [_from_query_node(item, shape.member, f"{path}[{i}]")
                    for i, item in enumerate(items, 1)]
        entries: dict[str, Any] = {}
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        for i, entry in enumerate(items, 1):
            if not isinstance(entry, dict) or key_name not in entry:
                raise SerializationError(f"{path} entry {i} has no {key_name}")
            key = _from_query_node(entry[key_name], shape.key, f"{path}.{i}.{key_name}")
            entries[key] = _from_query_node(entry.get(value_name, ""), shape.value,
                                            f"{path}.{key}")
        return entries
    if not isinstance(node, str):
        raise SerializationError(f"{path} is a {kind}, not a structure")
    return _query_scalar(node, kind, path)


def _indexes(node: Mapping[str, Any], path: str) -> list[str]:
    """The item keys of a flattened list or map (``1``, ``2``, ...) in order."""
    if not all(key.isdigit() and not key.startswith("0") for key in node):
        raise SerializationError(f"{path}: item numbers are 1, 2, ...")
    return sorted(node, key=int)


def _query_scalar(text: str, kind: str, path: str) -> Any:
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if kind == "timestamp":
            parsed = parse_timestamp(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
        if kind == "blob":
            return base64.b64decode(text, validate=True)
    except (ValueError, TypeError, OverflowError, RuntimeError, binascii.Error):
        raise SerializationError(f"{path}: {text!r} is not a {kind}") from None
    return text


def query_xml(operation: str, namespace: str, result: Mapping[str, Any],
              output: Shape | None, request_id: str) -> str:
    """The query protocol's answer document: the result under the output shape's
    ``resultWrapper``, then the response metadata."""
    inner = ""
    if output is not None:
        wrapper = output.serialization.get("resultWrapper", f"{operation}Result")
        inner = f"<{wrapper}>{_xml_members(result, output)}</{wrapper}>"
    return (f'<{operation}Response xmlns="{escape(namespace)}">{inner}<ResponseMetadata>'
            f"<RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>")


def _xml_members(value: Mapping[str, Any], shape: Shape) -> str:
    """A structure's members as the query protocol's XML elements, in the model's order."""
    parts = []
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            tag = member.serialization.get("name", name)
            parts.append(f"<{tag}>{_xml_value(item, member)}</{tag}>")
    return "".join(parts)


def _xml_value(value: Any, shape: Shape) -> str:
    kind = shape.type_name
    if kind == "structure":
        return _xml_members(value, shape)
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_xml_value(item, shape.member)}</{tag}>" for item in value)
    if kind == "map":
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        return "".join(f"<entry><{key_tag}>{_xml_value(key, shape.key)}</{key_tag}>"
                       f"<{value_tag}>{_xml_value(item, shape.value)}</{value_tag}></entry>"
                       for key, item in value.items())
    if kind == "timestamp" and isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=_UTC)
        return stamp.astimezone(_UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "blob" and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return escape(str(value))


def _xml(status: int, text: str, request_id: str) -> Response:
    return Response(text, status=status, headers={"Content-Type": "text/xml",
                                                   "x-amzn-RequestId": request_id})
