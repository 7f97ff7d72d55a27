"""Multi-model endpoints across two gunicorn workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.test_serve_support import Server, model_tree

INFERENCE = """
    import os
    import weakref
    from pathlib import Path

    class Model:
        def __init__(self, directory):
            self.value = (directory / "value.txt").read_text()

    def model_fn(model_dir):
        directory = Path(model_dir)
        if (directory / "oom").exists():
            raise MemoryError()
        model = Model(directory)
        pid = os.getpid()
        (directory / f"loaded-{pid}").touch()
        weakref.finalize(model, (directory / f"freed-{pid}").touch)
        return model

    def predict_fn(data, model):
        return {"value": model.value, "pid": os.getpid()}
"""


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    files = {f"models/{name}/model/value.txt": name.upper() for name in ("a", "b", "c")}
    files["models/big/model/oom"] = ""
    srv = Server(model_tree(tmp_path, INFERENCE, files), env={"SAGEMAKER_MULTI_MODEL": "true"})
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


def load(server: Server, name: str) -> requests.Response:
    url = str(server.base_dir / "models" / name / "model")
    return requests.post(server.url("/models"), json={"model_name": name, "url": url},
                         timeout=30)


def invoke(server: Server, name: str) -> requests.Response:
    return requests.post(server.url(f"/models/{name}/invoke"), data=b"[1]", timeout=30,
                         headers={"Content-Type": "application/json",
                                  "X-Amzn-SageMaker-Target-Model": name})


def test_load_list_describe_and_conflicts(server: Server) -> None:
    for name in ("a", "b", "c"):
        assert load(server, name).status_code == 200
    conflict = load(server, "a")
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    first = requests.get(server.url("/models"), params={"limit": 2}, timeout=30).json()
    assert [m["modelName"] for m in first["models"]] == ["a", "b"]
    assert first["models"][0]["modelUrl"].endswith("models/a/model")
    rest = requests.get(server.url("/models"), timeout=30,
                        params={"limit": 2, "next_page_token": first["nextPageToken"]}).json()
    assert [m["modelName"] for m in rest["models"]] == ["c"] and "nextPageToken" not in rest
    described = requests.get(server.url("/models/b"), timeout=30)
    assert described.json()["modelName"] == "b"
    missing = requests.get(server.url("/models/zzz"), timeout=30)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert requests.delete(server.url("/models/zzz"), timeout=30).status_code == 404
    assert invoke(server, "zzz").status_code == 404
    bad = requests.post(server.url("/models"), data=b"not json", timeout=30)
    assert bad.status_code == 400


def test_out_of_memory_load_is_507(server: Server) -> None:
    response = load(server, "big")
    assert response.status_code == 507
    assert response.json()["error"] == "insufficient_storage"
    assert requests.get(server.url("/models/big"), timeout=30).status_code == 404


def test_every_worker_serves_and_unload_frees_every_copy(server: Server) -> None:
    assert load(server, "a").status_code == 200
    pids: set[int] = set()
    for _ in range(300):  # new connection each time: both workers get some
        response = invoke(server, "a")
        assert response.status_code == 200, response.text
        assert response.json()["value"] == "A"
        pids.add(response.json()["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2
    via_header = requests.post(server.url("/invocations"), data=b"[1]", timeout=30,
                               headers={"Content-Type": "application/json",
                                        "X-Amzn-SageMaker-Target-Model": "a"})
    assert via_header.json()["value"] == "A"
    model_dir = server.base_dir / "models" / "a" / "model"
    assert requests.delete(server.url("/models/a"), timeout=30).status_code == 200
    # DELETE answers only after every worker dropped its copy
    assert {int(p.name.split("-")[1]) for p in model_dir.glob("freed-*")} >= pids
    for _ in range(10):
        assert invoke(server, "a").status_code == 404
    assert load(server, "a").status_code == 200  # loadable again after an unload
