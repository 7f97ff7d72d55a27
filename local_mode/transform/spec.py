"""A typed CreateTransformJob request, and the service's settings precedence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local_mode.errors import ValidationException
from local_mode.transform.filters import DataProcessing

DEFAULT_MAX_CONCURRENT = 1
DEFAULT_MAX_PAYLOAD_MB = 6
DEFAULT_STRATEGY = "MultiRecord"
MAX_PAYLOAD_MB = 100
DEFAULT_TIMEOUT = 600
DEFAULT_RETRIES = 3
_STRATEGIES = {"MULTI_RECORD": "MultiRecord", "SINGLE_RECORD": "SingleRecord",
               "MultiRecord": "MultiRecord", "SingleRecord": "SingleRecord"}


@dataclass(frozen=True)
class Effective:
    """The values a job runs with, after job > /execution-parameters > defaults."""

    max_concurrent: int
    max_payload_mb: int
    strategy: str


@dataclass(frozen=True)
class TransformJobSpec:
    name: str
    model_name: str
    data_type: str  # S3Prefix | ManifestFile
    input_uri: str
    content_type: str | None
    compression: str
    split_type: str
    output_path: str
    accept: str | None
    assemble_with: str
    instance_count: int
    environment: Mapping[str, str]
    max_concurrent: int | None
    max_payload_mb: int | None
    strategy: str | None
    timeout: float
    retries: int
    processing: DataProcessing
    instance_type: str = "local"
    """``TransformResources.InstanceType``: the Docker backend's CPU/memory limits."""

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> TransformJobSpec:
        source = request["TransformInput"]["DataSource"]["S3DataSource"]
        data = request["TransformInput"]
        output = request["TransformOutput"]
        client = request.get("ModelClientConfig") or {}
        processing = request.get("DataProcessing") or {}
        spec = cls(
            name=request["TransformJobName"], model_name=request["ModelName"],
            data_type=source["S3DataType"], input_uri=source["S3Uri"],
            content_type=data.get("ContentType"),
            compression=data.get("CompressionType", "None"),
            split_type=data.get("SplitType", "None"),
            output_path=output["S3OutputPath"], accept=output.get("Accept"),
            assemble_with=output.get("AssembleWith", "None"),
            instance_count=int(request["TransformResources"].get("InstanceCount", 1)),
            environment=dict(request.get("Environment") or {}),
            max_concurrent=request.get("MaxConcurrentTransforms"),
            max_payload_mb=request.get("MaxPayloadInMB"),
            strategy=request.get("BatchStrategy"),
            timeout=float(client.get("InvocationsTimeoutInSeconds", DEFAULT_TIMEOUT)),
            retries=int(client.get("InvocationsMaxRetries", DEFAULT_RETRIES)),
            processing=DataProcessing(processing.get("InputFilter", "$"),
                                      processing.get("OutputFilter", "$"),
                                      processing.get("JoinSource", "None") == "Input"),
            instance_type=str(request["TransformResources"].get("InstanceType", "local")))
        if source["S3DataType"] not in ("S3Prefix", "ManifestFile"):
            raise ValidationException(f"TransformInput.DataSource.S3DataSource.S3DataType "
                                      f"{source['S3DataType']!r} is not supported for transform "
                                      "jobs (S3Prefix or ManifestFile)", "CreateTransformJob")
        if spec.max_concurrent is not None and spec.max_payload_mb is not None:
            check_limits(spec.max_concurrent, spec.max_payload_mb)
        if spec.processing.active and spec.split_type not in ("Line", "None"):
            raise ValidationException("DataProcessing filters and JoinSource need text records "
                                      "(SplitType Line or None)", "CreateTransformJob")
        return spec

    def effective(self, container: Mapping[str, Any] | None) -> Effective:
        """Job settings win over the container's /execution-parameters, which win over the
        defaults (MaxConcurrentTransforms 1, MaxPayloadInMB 6, MultiRecord)."""
        container = container or {}
        concurrent = self.max_concurrent if self.max_concurrent is not None else \
            container.get("MaxConcurrentTransforms", DEFAULT_MAX_CONCURRENT)
        payload = self.max_payload_mb if self.max_payload_mb is not None else \
            container.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB)
        strategy = self.strategy or _STRATEGIES.get(str(container.get("BatchStrategy")),
                                                    DEFAULT_STRATEGY)
        if not isinstance(concurrent, int) or concurrent < 1:
            raise ValidationException(f"MaxConcurrentTransforms must be a positive integer, got "
                                      f"{concurrent!r}")
        if not isinstance(payload, int) or payload < 0:
            raise ValidationException(f"MaxPayloadInMB must be a non-negative integer, got "
                                      f"{payload!r}")
        check_limits(concurrent, payload)
        return Effective(concurrent, payload, strategy)


def check_limits(max_concurrent: int, max_payload_mb: int) -> None:
    """MaxPayloadInMB ≤ 100 and MaxConcurrentTransforms × MaxPayloadInMB ≤ 100."""
    if max_payload_mb > MAX_PAYLOAD_MB:
        raise ValidationException(f"MaxPayloadInMB is {max_payload_mb}; at most "
                                  f"{MAX_PAYLOAD_MB} is allowed", "CreateTransformJob")
    if max_concurrent * max_payload_mb > MAX_PAYLOAD_MB:
        raise ValidationException(f"MaxConcurrentTransforms ({max_concurrent}) x MaxPayloadInMB "
                                  f"({max_payload_mb}) is {max_concurrent * max_payload_mb}; "
                                  f"the product must not exceed {MAX_PAYLOAD_MB}",
                                  "CreateTransformJob")
