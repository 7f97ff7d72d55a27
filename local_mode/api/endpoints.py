"""The model, endpoint-config and endpoint operations of the local ``sagemaker`` client."""

from __future__ import annotations

import contextlib
import signal
from typing import Any

from local_mode import preflight, runners
from local_mode.api.base import SageMakerBase
from local_mode.autoscaling.registration import forget_endpoint
from local_mode.autoscaling.store import ScalingStore
from local_mode.docker_engine import ENDPOINT_LABEL, STATE_LABEL, DockerUnavailable, connect, sweep
from local_mode.endpoints.spec import ModelSpec, variants_from_config
from local_mode.endpoints.weights import record_capacity_request
from local_mode.errors import ResourceNotFound, ValidationException
from local_mode.listing import list_page
from local_mode.shapes import public_view
from local_mode.state import now

DELETE_WAIT_SECONDS = 60.0
MODEL_ECHOED = ("PrimaryContainer", "Containers", "ExecutionRoleArn", "InferenceExecutionConfig",
                "EnableNetworkIsolation", "VpcConfig")
CONFIG_ECHOED = ("ProductionVariants", "DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig",
                 "ShadowProductionVariants")


class EndpointsAPI(SageMakerBase):
    """CreateModel, CreateEndpointConfig, CreateEndpoint and their describe/list/update/delete."""

    # -- models ----------------------------------------------------------------------------
    def create_model(self, **request: Any) -> dict[str, Any]:
        spec = ModelSpec.from_request(request)
        preflight.check_model_data(request, self.settings.environ)
        if self._chosen_backend() == "docker":
            preflight.check_images([(f"{where}.Image", container["Image"])
                                    for where, container in preflight.model_containers(request)
                                    if container.get("Image")])
        description = {"ModelName": spec.name, "ModelArn": self._arn("model", spec.name),
                       "CreationTime": now(),
                       **{k: v for k, v in request.items() if k in MODEL_ECHOED}}
        self.store.create("models", spec.name, description, dict(request))
        return {"ModelArn": description["ModelArn"]}

    def describe_model(self, ModelName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        return public_view("DescribeModel", self._resource("models", ModelName).describe())

    def list_models(self, **kwargs: Any) -> dict[str, Any]:
        items = [{k: d[k] for k in ("ModelName", "ModelArn", "CreationTime")}
                 for _, d in self.store.descriptions("models")]
        return list_page("ListModels", items, kwargs, result_key="Models", name_key="ModelName")

    def delete_model(self, ModelName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        self._resource("models", ModelName)
        self.store.delete("models", ModelName)
        return {}

    # -- endpoint configs ------------------------------------------------------------------
    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        for variant in variants_from_config(request):
            if not self._exists("models", variant.model_name):
                raise ValidationException(f"Could not find model \"{variant.model_name}\".",
                                          "CreateEndpointConfig")
        description = {"EndpointConfigName": name,
                       "EndpointConfigArn": self._arn("endpoint-config", name),
                       "CreationTime": now(),
                       **{k: v for k, v in request.items() if k in CONFIG_ECHOED}}
        self.store.create("endpoint-configs", name, description, dict(request))
        return {"EndpointConfigArn": description["EndpointConfigArn"]}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        return public_view("DescribeEndpointConfig",
                           self._resource("endpoint-configs", EndpointConfigName).describe())

    def list_endpoint_configs(self, **kwargs: Any) -> dict[str, Any]:
        items = [{k: d[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")}
                 for _, d in self.store.descriptions("endpoint-configs")]
        return list_page("ListEndpointConfigs", items, kwargs, result_key="EndpointConfigs",
                         name_key="EndpointConfigName")

    def delete_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        self._resource("endpoint-configs", EndpointConfigName)
        self.store.delete("endpoint-configs", EndpointConfigName)
        return {}

    # -- endpoints -------------------------------------------------------------------------
    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        name, config = request["EndpointName"], request["EndpointConfigName"]
        self._resource("endpoint-configs", config)
        created = now()
        backend = self._chosen_backend()
        description = {"EndpointName": name, "EndpointArn": self._arn("endpoint", name),
                       "EndpointConfigName": config, "EndpointStatus": "Creating",
                       "CreationTime": created, "LastModifiedTime": created, "Backend": backend}
        resource = self.store.create("endpoints", name, description, dict(request))
        self._spawn(resource, runners.ENDPOINTS, backend)
        return {"EndpointArn": description["EndpointArn"]}

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        resource = self._resource("endpoints", EndpointName)
        return public_view("DescribeEndpoint", runners.describe_live(resource, runners.ENDPOINTS))

    def list_endpoints(self, **kwargs: Any) -> dict[str, Any]:
        items = [{k: d[k] for k in ("EndpointName", "EndpointArn", "CreationTime",
                                    "LastModifiedTime", "EndpointStatus")}
                 for _, d in self.store.descriptions("endpoints")]
        return list_page("ListEndpoints", items, kwargs, result_key="Endpoints",
                         name_key="EndpointName", status_key="EndpointStatus")

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        name, config = request["EndpointName"], request["EndpointConfigName"]
        new_config = self._resource("endpoint-configs", config)
        resource = self._resource("endpoints", name)
        runners.describe_live(resource, runners.ENDPOINTS)  # a lost runner: Failed, refused below
        self._check_scaled_variants(resource.describe(), new_config.request())

        def change(d: dict[str, Any]) -> None:
            if d["EndpointStatus"] != "InService":
                raise ValidationException(f"Cannot update in-progress endpoint "
                                          f"\"{d['EndpointArn']}\" (status "
                                          f"{d['EndpointStatus']}).", "UpdateEndpoint")
            d.update(EndpointStatus="Updating", PendingEndpointConfigName=config)
            d.pop("FailureReason", None)
        description = resource.update(change)
        runners.signal_runner(resource, signal.SIGHUP)  # the runner deploys it, blue/green
        return {"EndpointArn": description["EndpointArn"]}

    def _check_scaled_variants(self, endpoint: dict[str, Any], config: dict[str, Any]) -> None:
        """UpdateEndpoint may not remove a variant registered with autoscaling nor change its
        instance type (changing its model is allowed), as the service refuses."""
        scaled = {t.variant_name for t in
                  ScalingStore(self.store.root).targets_for_endpoint(endpoint["EndpointName"])}
        if not scaled:
            return
        try:
            current = self.store.get("endpoint-configs", endpoint["EndpointConfigName"]).request()
        except (ResourceNotFound, OSError, ValueError):
            return  # the current config is gone: nothing to compare with
        types = {v["VariantName"]: v.get("InstanceType") for v in current["ProductionVariants"]}
        wanted = {v["VariantName"]: v.get("InstanceType") for v in config["ProductionVariants"]}
        blocked = sorted(v for v in scaled if v in types and
                         (v not in wanted or wanted[v] != types[v]))
        if blocked:
            raise ValidationException(
                f"The variant(s) {blocked} of endpoint {endpoint['EndpointName']!r} are "
                "registered as scalable targets with Application Auto Scaling: deregister them "
                "before removing them or changing their instance type", "UpdateEndpoint")

    def update_endpoint_weights_and_capacities(self, EndpointName: str,  # noqa: N803 - the service's member names
                                               DesiredWeightsAndCapacities: list[dict[str, Any]],  # noqa: N803
                                               ) -> dict[str, Any]:
        """Change variants' weights and instance counts in place (no new fleet): the runner
        adds instances that join once healthy and drains those it removes; the endpoint is
        Updating until it has."""
        resource = self._resource("endpoints", EndpointName)
        runners.describe_live(resource, runners.ENDPOINTS)  # a lost runner: Failed, refused below
        changes = [dict(change) for change in DesiredWeightsAndCapacities]
        names = [change["VariantName"] for change in changes]
        if len(set(names)) != len(names):
            raise ValidationException(f"DesiredWeightsAndCapacities names a variant more than "
                                      f"once: {names}")
        for wanted in changes:
            if wanted.get("DesiredInstanceCount") == 0:
                raise ValidationException(
                    f"DesiredInstanceCount of variant {wanted['VariantName']!r} must be at "
                    "least 1 for an endpoint of instance-based variants")

        def change(d: dict[str, Any]) -> None:
            if d["EndpointStatus"] != "InService":
                raise ValidationException(f"Cannot update in-progress endpoint "
                                          f"\"{d['EndpointArn']}\" (status "
                                          f"{d['EndpointStatus']}).")
            present = [v["VariantName"] for v in d.get("ProductionVariants", ())]
            missing = [name for name in names if name not in present]
            if missing:
                raise ValidationException(f"The variant(s) {missing} are not present in the "
                                          f"endpoint {EndpointName!r}; its variants are "
                                          f"{present}")
            d["EndpointStatus"] = "Updating"
            d.pop("FailureReason", None)
            record_capacity_request(resource, changes)
        description = resource.update(change)
        runners.signal_runner(resource, signal.SIGUSR1)
        return {"EndpointArn": description["EndpointArn"]}

    def delete_endpoint(self, EndpointName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        """Stop the router and every instance, then forget the endpoint. Returns once nothing
        of it runs any more (the service answers at once and deletes in the background)."""
        resource = self._resource("endpoints", EndpointName)
        description = resource.update(lambda d: d.update(EndpointStatus="Deleting"))
        runners.stop_runner(resource, DELETE_WAIT_SECONDS)
        # the service deregisters a deleted endpoint's variants from autoscaling itself
        forget_endpoint(self.store.root, EndpointName)
        if description.get("Backend") == "docker":
            _sweep_containers(EndpointName, str(self.store.root))
        self.store.delete("endpoints", EndpointName)
        return {}


def _sweep_containers(name: str, state_dir: str) -> None:
    """Remove the endpoint's containers and network should its runner have died without
    doing so (a ``kill -9``): the runner's own teardown normally leaves nothing to do."""
    try:
        client = connect(timeout=30)
    except DockerUnavailable:  # no engine: nothing of ours can be running on it
        return
    try:
        with contextlib.suppress(Exception):  # best effort; the labels allow a manual sweep
            sweep(client, {ENDPOINT_LABEL: name, STATE_LABEL: state_dir})
    finally:
        client.close()
