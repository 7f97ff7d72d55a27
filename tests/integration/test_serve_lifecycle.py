"""``optml serve`` life cycle: /ping before, during and after loading, under load, SIGTERM
drain, and a SIGKILLed worker."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.integration.test_serve_support import Server, model_tree


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0,
              what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _first_answer(server: Server) -> requests.Response:
    """The first HTTP answer on the port, retrying only while nothing listens yet."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return requests.get(server.url("/ping"), timeout=30)
        except requests.ConnectionError:
            if time.monotonic() > deadline or server.proc.poll() is not None:
                raise
            time.sleep(0.01)


SLOW_MODEL = """
    import time
    from pathlib import Path

    def model_fn(model_dir):
        release = Path(model_dir) / "release"
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return lambda data: data
"""


def test_ping_is_503_while_model_fn_runs_then_200(tmp_path: Path) -> None:
    server = Server(model_tree(tmp_path, SLOW_MODEL))
    try:
        first = _first_answer(server)
        assert first.status_code == 503
        assert first.json()["error"] == "service_unavailable"
        invocation = requests.post(server.url("/invocations"), data=b"[1]", timeout=30,
                                   headers={"Content-Type": "application/json"})
        assert invocation.status_code == 503
        assert invocation.json()["error"] == "service_unavailable"
        (tmp_path / "model" / "release").touch()
        server.wait_ready()
        assert requests.post(server.url("/invocations"), data=b"[1]", timeout=30,
                             headers={"Content-Type": "application/json"}).json() == [1]
        assert server.terminate() == 0
    finally:
        server.stop()


FAILING_MODEL = """
    def model_fn(model_dir):
        raise ValueError("broken weights in " + model_dir)
"""


def test_failing_model_fn_answers_503_forever_and_logs_once(tmp_path: Path) -> None:
    server = Server(model_tree(tmp_path, FAILING_MODEL))
    try:
        response = server.wait_status(503)
        _wait_for(lambda: b"model_load_failed" in requests.get(
            server.url("/ping"), timeout=30).content, what="the failure state")
        for _ in range(3):
            response = requests.get(server.url("/ping"), timeout=30)
            assert response.status_code == 503
            body = response.json()
            assert body["error"] == "model_load_failed"
            assert "broken weights" in body["message"]
            assert "Traceback" not in body["message"]
        assert server.proc.poll() is None  # still up, so the platform sees the failure
        log = server.log
        assert log.count("FATAL") == 1
        assert "ValueError: broken weights" in log
        assert server.terminate() == 1
    finally:
        server.stop()


BUSY_MODEL = """
    import os
    import time
    import uuid
    from pathlib import Path

    def model_fn(model_dir):
        return Path(model_dir)

    def predict_fn(data, model_dir):
        (model_dir / f"started-{os.getpid()}-{uuid.uuid4().hex}").touch()
        deadline = time.monotonic() + 30
        while not (model_dir / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return data
"""


def _started(model_dir: Path) -> int:
    return len(list(model_dir.glob("started-*")))


def test_ping_answers_while_every_worker_thread_is_busy(tmp_path: Path) -> None:
    """One worker with one request thread, kept busy by a long prediction (and more queued
    behind it): /ping must still answer at once. Plain gthread fails this: its /ping waits
    behind the predictions. (One worker, because with two the kernel, not the test, decides
    which worker takes each connection, and it may give them all to the same one.)"""
    model_dir = tmp_path / "model"
    server = Server(model_tree(tmp_path, BUSY_MODEL), args=["--threads", "1"],
                    env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    pool = ThreadPoolExecutor(max_workers=3)
    calls = []
    try:
        server.wait_ready()
        for _ in range(3):  # one runs, two wait for the thread
            calls.append(pool.submit(requests.post, server.url("/invocations"), data=b"[7]",
                                     headers={"Content-Type": "application/json"}, timeout=120))
        _wait_for(lambda: _started(model_dir) == 1, what="a prediction to start")
        for _ in range(5):
            ping = requests.get(server.url("/ping"), timeout=30)
            assert ping.status_code == 200
        assert _started(model_dir) == 1  # the thread is still taken: ping went around it
        (model_dir / "release").touch()
        assert [c.result().status_code for c in calls] == [200] * len(calls)
    finally:
        (model_dir / "release").touch()
        pool.shutdown(wait=True)
        server.stop()


DRAIN_MODEL = """
    import time
    import uuid
    from pathlib import Path

    def model_fn(model_dir):
        return Path(model_dir)

    def predict_fn(data, model_dir):
        (model_dir / f"started-{uuid.uuid4().hex}").touch()
        time.sleep(1.5)
        return data
"""


def test_sigterm_drains_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    server = Server(model_tree(tmp_path, DRAIN_MODEL))
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        server.wait_ready()
        calls = [pool.submit(requests.post, server.url("/invocations"),
                             data=json.dumps([i]).encode(),
                             headers={"Content-Type": "application/json"}, timeout=60)
                 for i in range(4)]
        _wait_for(lambda: _started(model_dir) >= 4, what="4 requests in flight")
        server.proc.send_signal(signal.SIGTERM)
        results = [c.result() for c in calls]
        assert [r.status_code for r in results] == [200] * 4
        assert sorted(r.json()[0] for r in results) == [0, 1, 2, 3]
        assert server.proc.wait(timeout=60) == 0
    finally:
        pool.shutdown(wait=True)
        server.stop()


FAST_MODEL = """
    import os
    import time

    def model_fn(model_dir):
        return None

    def predict_fn(data, model):
        time.sleep(0.01)
        return {"pid": os.getpid(), "echo": data.tolist()}
"""


def test_sigkilled_worker_is_replaced_and_only_its_requests_fail(tmp_path: Path) -> None:
    server = Server(model_tree(tmp_path, FAST_MODEL))
    outcomes: list[bool] = []
    lock = threading.Lock()
    halfway = threading.Event()

    def client(n: int) -> None:
        for i in range(40):
            try:
                response = requests.post(server.url("/invocations"), data=json.dumps([n, i]),
                                         headers={"Content-Type": "application/json"},
                                         timeout=30)
                ok = response.status_code == 200 and response.json()["echo"] == [n, i]
            except requests.RequestException:
                ok = False
            with lock:
                outcomes.append(ok)
                if len(outcomes) >= 40:
                    halfway.set()

    try:
        server.wait_ready()
        _wait_for(lambda: len(server.worker_pids()) == 2, what="2 workers")
        victim = server.worker_pids()[0]
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        halfway.wait(timeout=60)
        os.kill(victim, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=120)
        assert len(outcomes) == 160
        assert outcomes.count(False) <= 4  # at most the requests in flight on the victim
        _wait_for(lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids(),
                  what="a replacement worker")
        assert requests.get(server.url("/ping"), timeout=30).status_code == 200
        assert server.terminate() == 0
    finally:
        server.stop()


PER_WORKER_MODEL = """
    import os

    def model_fn(model_dir):
        return {"loaded_in": os.getpid()}

    def predict_fn(data, model):
        return {"loaded_in": model["loaded_in"], "served_by": os.getpid()}
"""


def test_without_preload_each_worker_loads_its_own_model(tmp_path: Path) -> None:
    server = Server(model_tree(tmp_path, PER_WORKER_MODEL), env={"OPTML_PRELOAD_MODEL": "false"})
    try:
        server.wait_ready()
        for _ in range(5):
            body = requests.post(server.url("/invocations"), data=b"[1]", timeout=30,
                                 headers={"Content-Type": "application/json"}).json()
            assert body["loaded_in"] == body["served_by"] != server.proc.pid
    finally:
        server.stop()


UNEVEN_LOAD_MODEL = """
    import os, time

    def model_fn(model_dir):
        try:  # the first worker to load is quick; the other takes 3 s
            os.close(os.open(os.path.join(model_dir, "first"), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            time.sleep(3)
        return {"loaded_in": os.getpid()}

    def predict_fn(data, model):
        return {"loaded_in": model["loaded_in"], "served_by": os.getpid()}
"""


def test_without_preload_a_worker_still_loading_takes_no_request(tmp_path: Path) -> None:
    """Found by optml check on optml/onnx: once one worker's /ping said 200, new connections
    also reached the worker still loading, which answered 503. A worker now accepts only once
    its model is loaded."""
    server = Server(model_tree(tmp_path, UNEVEN_LOAD_MODEL), env={"OPTML_PRELOAD_MODEL": "false"})
    try:
        server.wait_ready()
        statuses = [requests.post(server.url("/invocations"), data=b"[1]", timeout=30,
                                  headers={"Content-Type": "application/json",
                                           "Connection": "close"}).status_code
                    for _ in range(30)]  # each on a new connection: either worker may take it
        assert statuses == [200] * 30
    finally:
        server.stop()


def test_requirements_are_installed_first_and_a_failure_is_reported(tmp_path: Path) -> None:
    files = {"model/code/requirements.txt": "./no-such-local-package\n"}
    server = Server(model_tree(tmp_path, PER_WORKER_MODEL, files),
                    env={"OPTML_INSTALL_REQUIREMENTS": "true", "PIP_NO_INDEX": "1"})
    try:
        _wait_for(lambda: b"model_load_failed" in _first_answer(server).content,
                  what="the requirements failure")
        body = requests.get(server.url("/ping"), timeout=30).json()
        assert "no-such-local-package" in body["message"]
        assert server.terminate() == 1
    finally:
        server.stop()


ATEXIT_MODEL = """
    import atexit
    import os
    import sys
    from pathlib import Path

    def model_fn(model_dir):
        # registered in the master before the fork, so every worker inherits it too
        atexit.register(lambda: (Path(model_dir) / f"atexit-{os.getpid()}").touch())
        return None

    def predict_fn(data, model):
        print("answered without a newline", end="")  # stays in stdout's buffer
        return data
"""


def test_workers_exiting_on_sigterm_still_run_atexit_and_flush(tmp_path: Path) -> None:
    """Workers skip the interpreter's teardown on a graceful stop (it copied the master's heap
    page by page), but the user's atexit handlers and buffered output must survive that."""
    model_dir = tmp_path / "model"
    server = Server(model_tree(tmp_path, ATEXIT_MODEL))
    try:
        server.wait_ready()
        _wait_for(lambda: len(server.worker_pids()) == 2, what="both workers forked")
        workers = server.worker_pids()
        for i in range(4):
            response = requests.post(server.url("/invocations"), data=json.dumps([i]),
                                     headers={"Content-Type": "application/json"}, timeout=30)
            assert response.status_code == 200
        assert server.terminate() == 0
        ran = {int(p.name.split("-")[1]) for p in model_dir.glob("atexit-*")}
        assert ran == {server.proc.pid, *workers}
        assert "answered without a newline" in server.log
        assert server.log.count("Worker exiting") == 2
    finally:
        server.stop()
