"""Helpers for the local endpoint / transform integration tests: model artifacts, a client on a
private state directory, and clean-up of every endpoint a test created.

(No tests here; imported by the test_local_endpoints* / test_local_transform* modules.)
"""

from __future__ import annotations

import io
import os
import tarfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_mode.runtime import RuntimeClient
from local_mode.sagemaker import SageMakerClient
from toolkit.settings import Settings

#: Small, fast containers: one worker, no pip.
FAST_ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OPTML_INSTALL_REQUIREMENTS": "false"}

ECHO = """
    import json
    import os
    from pathlib import Path

    def model_fn(model_dir):
        path = Path(model_dir) / "value.txt"
        return path.read_text() if path.exists() else "none"

    def transform_fn(model, body, content_type, accept, context):
        if isinstance(body, str):
            body = body.encode()
        if body.lower().startswith(b"fail"):
            raise ValueError("asked to fail")
        if context.custom_attributes:
            context.set_custom_attributes("echo:" + context.custom_attributes)
        out = {"model": model, "pid": os.getpid(), "body": body.decode("utf-8", "replace"),
               "variant": os.environ.get("SAGEMAKER_VARIANT_NAME"),
               "content_type": content_type}
        return json.dumps(out), "application/json"
"""


def make_model_tar(path: Path, inference: str = ECHO, files: dict[str, str] | None = None
                   ) -> Path:
    """A ``model.tar.gz`` with ``code/inference.py`` and ``files`` (name -> text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {"code/inference.py": textwrap.dedent(inference), **(files or {})}
    with tarfile.open(path, "w:gz") as tar:
        for name, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def settings_for(state_dir: Path, **extra: str) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
    env.update({"OPTML_LOCAL_STATE_DIR": str(state_dir), "OPTML_LOCAL_BACKEND": "process"})
    env.update(extra)
    return Settings.from_environ(env)


class Local:
    """A ``sagemaker`` and a ``sagemaker-runtime`` client on one private state directory."""

    def __init__(self, root: Path, environ: dict[str, str] | None = None) -> None:
        self.root = root
        self.settings = settings_for(root / "state", **(environ or {}))
        self.sm = SageMakerClient(self.settings, backend="process")
        self.rt = RuntimeClient(self.settings)

    def model(self, name: str, inference: str = ECHO, *, value: str | None = None,
              env: dict[str, str] | None = None, **container: Any) -> str:
        files = {"value.txt": value} if value is not None else {}
        tar = make_model_tar(self.root / "artifacts" / name / "model.tar.gz", inference, files)
        spec = {"Image": "optml-local-test", "ModelDataUrl": tar.as_uri(),
                "Environment": {**FAST_ENV, **(env or {})}, **container}
        self.sm.create_model(ModelName=name, PrimaryContainer=spec)
        return name

    def config(self, name: str, *variants: tuple[str, str, int, float]) -> str:
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": v, "ModelName": m, "InitialInstanceCount": n,
             "InstanceType": "local", "InitialVariantWeight": w} for v, m, n, w in variants])
        return name

    def endpoint(self, name: str, config: str, wait: bool = True) -> str:
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        if wait:
            self.wait_status(name, "InService")
        return name

    def wait_status(self, name: str, *statuses: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            description = self.sm.describe_endpoint(EndpointName=name)
            if description["EndpointStatus"] in statuses:
                return description
            if description["EndpointStatus"] == "Failed" and "Failed" not in statuses:
                raise AssertionError(f"endpoint failed: {description.get('FailureReason')}\n"
                                     f"{self.runner_log(name)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"endpoint {name} stuck in "
                                     f"{description['EndpointStatus']}\n{self.runner_log(name)}")
            time.sleep(0.05)

    def private(self, name: str) -> dict[str, Any]:
        return self.sm.store.get("endpoints", name).describe()

    def runner_log(self, name: str) -> str:
        path = self.sm.store.root / "endpoints" / name / "runner.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def invoke(self, name: str, body: bytes = b"hello", **kwargs: Any) -> dict[str, Any]:
        response = self.rt.invoke_endpoint(EndpointName=name, Body=body,
                                           ContentType=kwargs.pop("ContentType", "text/plain"),
                                           **kwargs)
        response["Data"] = response["Body"].read()
        return response

    def cleanup(self) -> None:
        self.rt.close()
        for resource in self.sm.store.list("endpoints"):
            self.sm.delete_endpoint(EndpointName=resource.name)


@pytest.fixture()
def local(tmp_path: Path) -> Iterator[Local]:
    env = Local(tmp_path)
    try:
        yield env
    finally:
        env.cleanup()
