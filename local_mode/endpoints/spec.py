"""Typed views of CreateModel and CreateEndpointConfig requests (already validated by botocore's
model); the checks here are the ones the service makes beyond the API model's shapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local_mode.errors import ValidationException

MAX_PIPELINE_CONTAINERS = 15


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a model: the image, its artifact and its environment."""

    hostname: str
    image: str | None
    model_data_url: str | None
    environment: Mapping[str, str] = field(default_factory=dict)
    mode: str = "SingleModel"

    @property
    def multi_model(self) -> bool:
        return self.mode == "MultiModel"

    @classmethod
    def from_request(cls, data: Mapping[str, Any], hostname: str) -> ContainerSpec:
        url = data.get("ModelDataUrl")
        source = data.get("ModelDataSource", {}).get("S3DataSource")
        if url is None and source:
            url = source.get("S3Uri")
        return cls(hostname=str(data.get("ContainerHostname") or hostname),
                   image=data.get("Image"), model_data_url=url,
                   environment=dict(data.get("Environment") or {}),
                   mode=str(data.get("Mode") or "SingleModel"))


@dataclass(frozen=True)
class ModelSpec:
    """A model: one primary container, or an inference pipeline of up to 15 called in order."""

    name: str
    containers: tuple[ContainerSpec, ...]

    @property
    def multi_model(self) -> bool:
        return self.containers[0].multi_model

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> ModelSpec:
        name = request["ModelName"]
        primary = request.get("PrimaryContainer")
        listed = request.get("Containers")
        if primary and listed:
            raise ValidationException("Specify either PrimaryContainer or Containers, not both",
                                      "CreateModel")
        containers: tuple[ContainerSpec, ...]
        if primary:
            containers = (ContainerSpec.from_request(primary, "primary"),)
        elif listed:
            if len(listed) > MAX_PIPELINE_CONTAINERS:
                raise ValidationException(f"Containers: an inference pipeline has at most "
                                          f"{MAX_PIPELINE_CONTAINERS} containers, got "
                                          f"{len(listed)}", "CreateModel")
            containers = tuple(ContainerSpec.from_request(c, f"container-{i + 1}")
                               for i, c in enumerate(listed))
        else:
            raise ValidationException("A model needs PrimaryContainer or Containers",
                                      "CreateModel")
        hostnames = [c.hostname for c in containers]
        if len(set(hostnames)) != len(hostnames):
            raise ValidationException(f"Containers: ContainerHostname values must be unique, "
                                      f"got {hostnames}", "CreateModel")
        if len(containers) > 1 and any(c.multi_model for c in containers):
            raise ValidationException("Containers: Mode MultiModel is only allowed for a "
                                      "single PrimaryContainer", "CreateModel")
        for index, container in enumerate(containers):
            where = "PrimaryContainer" if primary else f"Containers[{index}]"
            if container.multi_model and not container.model_data_url:
                raise ValidationException(f"{where}.ModelDataUrl: a MultiModel container needs "
                                          "the S3 prefix of its models", "CreateModel")
        return cls(name, containers)


@dataclass(frozen=True)
class VariantSpec:
    """One production variant of an endpoint config."""

    name: str
    model_name: str
    instance_count: int
    instance_type: str
    weight: float
    startup_timeout: float

    @classmethod
    def from_request(cls, data: Mapping[str, Any]) -> VariantSpec:
        count = int(data.get("InitialInstanceCount", 1))
        if count < 1:
            raise ValidationException(f"ProductionVariants[{data['VariantName']}]."
                                      "InitialInstanceCount must be at least 1",
                                      "CreateEndpointConfig")
        return cls(name=data["VariantName"], model_name=data["ModelName"],
                   instance_count=count, instance_type=str(data.get("InstanceType", "local")),
                   weight=float(data.get("InitialVariantWeight", 1.0)),
                   startup_timeout=float(data.get("ContainerStartupHealthCheckTimeoutInSeconds",
                                                  600)))


def variants_from_config(request: Mapping[str, Any]) -> list[VariantSpec]:
    """The variants of a CreateEndpointConfig request, checked as the service checks them."""
    variants = [VariantSpec.from_request(v) for v in request["ProductionVariants"]]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValidationException(f"ProductionVariants: VariantName values must be unique, got "
                                  f"{names}", "CreateEndpointConfig")
    if sum(v.weight for v in variants) <= 0:
        raise ValidationException("ProductionVariants: at least one InitialVariantWeight must be "
                                  "positive", "CreateEndpointConfig")
    return variants
