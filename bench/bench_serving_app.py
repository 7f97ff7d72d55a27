"""In-process cost of optml's WSGI app per request, against a hello-world WSGI app, same run.

    .venv/bin/python bench/bench_serving_app.py                 # 5 rounds x 20000 requests
    .venv/bin/python bench/bench_serving_app.py --requests 5000 --rounds 3 --profile

No sockets and no gunicorn: each request is ``app(environ, start_response)`` with a fresh
environ shaped like gunicorn's, its body iterated and closed as gunicorn does. What is left is
the server-side Python cost of routing, negotiation, the handler chain and response building,
i.e. the part of a request optml itself controls. The model is the benchmark's no-op model
(``bench/serving/apps/noop_inference.py``: JSON in, echo, JSON out). Apps are measured
interleaved, round by round, in CPU time of this thread (``time.thread_time``), so load from
other processes on a shared machine inflates the figures far less than wall time would; the
median over the rounds is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving.apps.hello_wsgi import app as hello_app
from bench.serving.fixtures import APPS_DIR, NOOP_PAYLOAD

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def optml_app(tmp: Path) -> WsgiApp:
    """optml's app exactly as ``optml serve`` builds it, around the no-op model."""
    from toolkit.serving.app import close_connection_when_asked, create_app
    from toolkit.serving.codecs import default_registry
    from toolkit.serving.handlers import load_handlers
    from toolkit.serving.runtime import ExecutionDefaults, ServingRuntime

    codecs = default_registry()
    handlers = load_handlers(program=str(APPS_DIR / "noop_inference.py"), search=[],
                             default_handlers=None, codecs=codecs)
    runtime = ServingRuntime(handlers=handlers, codecs=codecs, model_dir=tmp,
                             default_accept=None, max_payload_mb=6, debug_errors=False,
                             execution=ExecutionDefaults(2, "MULTI_RECORD", 6))
    runtime.load_model()
    return close_connection_when_asked(create_app(runtime))


def environ_for(method: str, path: str, body: bytes, content_type: str | None,
                accept: str | None) -> dict[str, Any]:
    """The keys gunicorn's ``wsgi.create`` sets for a keep-alive HTTP/1.1 request."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "RAW_URI": path, "QUERY_STRING": "",
        "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8080", "HTTP_USER_AGENT": "wrk",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.errors": sys.stderr,
        "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True,
    }
    if body or method == "POST":
        environ["CONTENT_LENGTH"] = str(len(body))
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    if accept is not None:
        environ["HTTP_ACCEPT"] = accept
    return environ


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    _start_response.status = status  # type: ignore[attr-defined]


def call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, bytes]:
    result = app(environ, _start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return _start_response.status, data  # type: ignore[attr-defined]


def cpu_us_per_request(app: WsgiApp, request: tuple[Any, ...], count: int) -> float:
    template = environ_for(*request)
    body = request[2]
    started = time.thread_time()
    for _ in range(count):
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        call(app, environ)
    return (time.thread_time() - started) / count * 1e6


CASES: dict[str, tuple[Any, ...]] = {
    "POST /invocations": ("POST", "/invocations", NOOP_PAYLOAD.body, NOOP_PAYLOAD.content_type,
                          None),
    "POST /invocations, Accept: application/json": (
        "POST", "/invocations", NOOP_PAYLOAD.body, NOOP_PAYLOAD.content_type,
        "application/json"),
    "GET /ping": ("GET", "/ping", b"", None, None),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of optml's app on /invocations")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="optml-bench-app-") as tmp:
        optml = optml_app(Path(tmp))
        apps = {"optml": optml, "hello": hello_app}
        for name, request in CASES.items():  # correctness first: a fast error proves nothing
            status, _ = call(optml, environ_for(*request))
            if not status.startswith("200"):
                raise SystemExit(f"bench_serving_app: optml answered {status} to {name}")
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for case, request in CASES.items():
                for name, app in apps.items():
                    samples.setdefault((case, name), []).append(
                        cpu_us_per_request(app, request, args.requests))
        print(f"## In-process WSGI cost, CPU µs per request (median of {args.rounds} rounds "
              f"x {args.requests} requests)\n")
        print("| request | optml µs | hello µs | optml - hello µs |")
        print("|---|---:|---:|---:|")
        for case in CASES:
            optml_us = statistics.median(samples[(case, "optml")])
            hello_us = statistics.median(samples[(case, "hello")])
            print(f"| {case} | {optml_us:.1f} | {hello_us:.1f} | {optml_us - hello_us:.1f} |")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            cpu_us_per_request(optml, CASES["POST /invocations"], args.requests)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
