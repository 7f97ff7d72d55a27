"""The model / endpoint-config / endpoint operations of the local ``sagemaker`` client.

A mixin of :class:`local_mode.sagemaker.SageMakerClient` (same state store, same validation); kept
here so the client module stays about training jobs. It imports only what lies below the
client (the base, the store, the backend choice), never the client itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from local_mode import preflight
from local_mode.backend_choice import choose_backend
from local_mode.endpoints.spec import ModelSpec, variants_from_config
from local_mode.errors import ValidationException
from local_mode.listing import list_page
from local_mode.shapes import public_view
from local_mode.state import ResourceDir, now
from toolkit.pids import pid_alive

if TYPE_CHECKING:
    from local_mode.state import StateStore
    from toolkit.settings import Settings

ACTIVE = frozenset({"Creating", "Updating", "InService", "SystemUpdating", "RollingBack"})
DELETE_WAIT_SECONDS = 60.0


class EndpointsAPI:
    """CreateModel, CreateEndpointConfig, CreateEndpoint and their describe/list/update/delete."""

    settings: Settings
    store: StateStore
    backend: str

    def _get(self, kind: str, name: str) -> ResourceDir:  # provided by SageMakerClient
        raise NotImplementedError

    def _arn(self, kind: str, name: str) -> str:  # provided by LocalClient (region, account)
        raise NotImplementedError

    # -- models ----------------------------------------------------------------------------
    def create_model(self, **request: Any) -> dict[str, Any]:
        spec = ModelSpec.from_request(request)
        preflight.check_model_data(request, self.settings.environ)
        if self._endpoint_backend() == "docker":
            preflight.check_images([(f"{where}.Image", container["Image"])
                                    for where, container in preflight.model_containers(request)
                                    if container.get("Image")])
        description = {"ModelName": spec.name, "ModelArn": self._arn("model", spec.name),
                       "CreationTime": now(),
                       **{k: v for k, v in request.items()
                          if k in ("PrimaryContainer", "Containers", "ExecutionRoleArn",
                                   "InferenceExecutionConfig", "EnableNetworkIsolation",
                                   "VpcConfig")}}
        self.store.create("models", spec.name, description, dict(request))
        return {"ModelArn": description["ModelArn"]}

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        return public_view("DescribeModel", self._described("models", ModelName, "model"))

    def list_models(self, **kwargs: Any) -> dict[str, Any]:
        items = [{k: d[k] for k in ("ModelName", "ModelArn", "CreationTime")}
                 for d in (r.describe() for r in self.store.list("models"))]
        return list_page("ListModels", items, kwargs, result_key="Models", name_key="ModelName")

    def delete_model(self, ModelName: str) -> dict[str, Any]:
        self._described("models", ModelName, "model")
        self.store.delete("models", ModelName)
        return {}

    # -- endpoint configs ------------------------------------------------------------------
    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        for variant in variants_from_config(request):
            if not (self.store.root / "models" / variant.model_name / "description.json").is_file():
                raise ValidationException(f"Could not find model \"{variant.model_name}\".",
                                          "CreateEndpointConfig")
        description = {"EndpointConfigName": name,
                       "EndpointConfigArn": self._arn("endpoint-config", name),
                       "CreationTime": now(),
                       **{k: v for k, v in request.items()
                          if k in ("ProductionVariants", "DataCaptureConfig", "KmsKeyId",
                                   "AsyncInferenceConfig", "ShadowProductionVariants")}}
        self.store.create("endpoint-configs", name, description, dict(request))
        return {"EndpointConfigArn": description["EndpointConfigArn"]}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return public_view("DescribeEndpointConfig", self._described(
            "endpoint-configs", EndpointConfigName, "endpoint configuration"))

    def list_endpoint_configs(self, **kwargs: Any) -> dict[str, Any]:
        items = [{k: d[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")}
                 for d in (r.describe() for r in self.store.list("endpoint-configs"))]
        return list_page("ListEndpointConfigs", items, kwargs, result_key="EndpointConfigs",
                         name_key="EndpointConfigName")

    def delete_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        self._described("endpoint-configs", EndpointConfigName, "endpoint configuration")
        self.store.delete("endpoint-configs", EndpointConfigName)
        return {}

    # -- endpoints -------------------------------------------------------------------------
    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        name, config = request["EndpointName"], request["EndpointConfigName"]
        self._described("endpoint-configs", config, "endpoint configuration")
        created = now()
        description = {"EndpointName": name, "EndpointArn": self._arn("endpoint", name),
                       "EndpointConfigName": config, "EndpointStatus": "Creating",
                       "CreationTime": created, "LastModifiedTime": created,
                       "Backend": self._endpoint_backend()}
        resource = self.store.create("endpoints", name, description, dict(request))
        self._spawn_endpoint_runner(resource, description["Backend"])
        return {"EndpointArn": description["EndpointArn"]}

    def _endpoint_backend(self) -> str:
        """As for training jobs: ``auto`` is Docker when an engine answers, else processes."""
        return choose_backend(self.backend)

    def _spawn_endpoint_runner(self, resource: ResourceDir, backend: str,
                               module: str = "local_mode.endpoints.runner") -> None:
        env = dict(self.settings.environ)
        env["OPTML_LOCAL_STATE_DIR"] = str(self.store.root)
        with (resource.path / "runner.log").open("ab") as out:
            runner = subprocess.Popen(  # argv list, no shell
                [sys.executable, "-m", module, str(self.store.root), resource.name, backend],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        # The runner outlives this client if it must; while we live, reap it when it ends so it
        # never lingers as a zombie.
        threading.Thread(target=runner.wait, name=f"reap-{resource.name}", daemon=True).start()

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        resource = self._endpoint(EndpointName)
        description = resource.describe()
        if description["EndpointStatus"] in ACTIVE and \
                resource.runner_lost(description["CreationTime"]):
            description = resource.update(lambda d: d.update(
                EndpointStatus="Failed",
                FailureReason="InternalServerError: the local endpoint runner is no longer "
                              "running") if d["EndpointStatus"] in ACTIVE else None)
        return public_view("DescribeEndpoint", description)

    def list_endpoints(self, **kwargs: Any) -> dict[str, Any]:
        items = [{k: d[k] for k in ("EndpointName", "EndpointArn", "CreationTime",
                                    "LastModifiedTime", "EndpointStatus")}
                 for d in (r.describe() for r in self.store.list("endpoints"))]
        return list_page("ListEndpoints", items, kwargs, result_key="Endpoints",
                         name_key="EndpointName", status_key="EndpointStatus")

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        name, config = request["EndpointName"], request["EndpointConfigName"]
        self._described("endpoint-configs", config, "endpoint configuration")
        resource = self._endpoint(name)

        def change(d: dict[str, Any]) -> None:
            if d["EndpointStatus"] != "InService":
                raise ValidationException(f"Cannot update in-progress endpoint "
                                          f"\"{d['EndpointArn']}\" (status "
                                          f"{d['EndpointStatus']}).", "UpdateEndpoint")
            d.update(EndpointStatus="Updating", PendingEndpointConfigName=config)
            d.pop("FailureReason", None)
        description = resource.update(change)
        pid = resource.runner_pid()
        if pid is not None:
            with _suppress_lookup():
                os.kill(pid, signal.SIGHUP)
        return {"EndpointArn": description["EndpointArn"]}

    def delete_endpoint(self, EndpointName: str) -> dict[str, Any]:
        """Stop the router and every instance, then forget the endpoint. Returns once nothing
        of it runs any more (the service answers at once and deletes in the background)."""
        resource = self._endpoint(EndpointName)
        description = resource.update(lambda d: d.update(EndpointStatus="Deleting"))
        stop_runner(resource, DELETE_WAIT_SECONDS)
        if description.get("Backend") == "docker":
            _sweep_containers(EndpointName, str(self.store.root))
        self.store.delete("endpoints", EndpointName)
        return {}

    # -- helpers ---------------------------------------------------------------------------
    def _endpoint(self, name: str) -> ResourceDir:
        try:
            return self.store.get("endpoints", name)
        except Exception:  # noqa: BLE001 - ResourceNotFound
            raise ValidationException(f"Could not find endpoint \"{name}\".") from None

    def _described(self, kind: str, name: str, what: str) -> dict[str, Any]:
        try:
            description = self.store.get(kind, name).describe()
        except Exception:  # noqa: BLE001 - ResourceNotFound
            raise ValidationException(f"Could not find {what} \"{name}\".") from None
        return description  # callers show it through public_view: only the shape's members


class _suppress_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        return exc_type is not None and issubclass(exc_type, ProcessLookupError)


def stop_runner(resource: ResourceDir, timeout: float) -> None:
    """SIGTERM the resource's runner and wait until it is gone (SIGKILL after ``timeout``)."""
    deadline = time.monotonic() + 10
    pid = resource.runner_pid()
    while pid is None and time.monotonic() < deadline and \
            (resource.path / "runner.log").exists() and not _started_and_gone(resource):
        time.sleep(0.05)  # the runner is starting; its pid file appears in a moment
        pid = resource.runner_pid()
    if pid is None:
        return
    with _suppress_lookup():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        with _suppress_lookup():
            os.kill(pid, signal.SIGKILL)


def _sweep_containers(name: str, state_dir: str) -> None:
    """Remove the endpoint's containers and network should its runner have died without
    doing so (a ``kill -9``): the runner's own teardown normally leaves nothing to do."""
    from local_mode.docker_engine import connect
    from local_mode.endpoints.docker_backend import ENDPOINT_LABEL, sweep

    try:
        client = connect(timeout=30)
    except Exception:  # noqa: BLE001 - no engine: nothing of ours can be running on it
        return
    try:
        sweep(client, (ENDPOINT_LABEL, name), state_dir)
    except Exception:  # noqa: BLE001, S110 - best effort; the labels allow a manual sweep
        pass
    finally:
        client.close()


def _started_and_gone(resource: ResourceDir) -> bool:
    """The runner already finished (a Failed endpoint's runner exits after clean-up)."""
    try:
        return resource.describe().get("RouterPort") is not None or \
            resource.describe().get("EndpointStatus") == "Failed"
    except FileNotFoundError:
        return True


