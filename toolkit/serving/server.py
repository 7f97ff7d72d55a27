"""``optml serve``: the serving entry point of the /opt/ml contract.

Start-up order is what makes ``/ping`` honest:

1. read settings (a bad variable exits 2 at once, naming it);
2. bind the port and answer 503 from a stdlib thread within milliseconds (:mod:`.responder`);
3. install the user's ``requirements.txt``, import the handlers and, with preload, run
   ``model_fn`` in this (master) process;
4. stop the responder and hand the same socket to gunicorn, whose workers answer 200 on /ping.

A failure in step 3 is logged once with its traceback and the process keeps answering 503 with
the error until it is stopped (exit 1): the platform sees an unhealthy container, not a crash
loop. SIGTERM at any point exits 0 after in-flight requests finish (gunicorn's graceful stop).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from toolkit.errors import ConfigError
from toolkit.layout import Layout
from toolkit.resources import cpu_count
from toolkit.serving.responder import PreBindResponder, bind_listener, bind_unix_listener
from toolkit.settings import ServingSettings, Settings

log = logging.getLogger("optml.serving")


class _Stopped(BaseException):
    """Raised by the SIGTERM handler to abandon start-up (BaseException: user code's
    ``except Exception`` in model_fn must not swallow it)."""


class _StopSignal:
    """SIGTERM/SIGINT before gunicorn runs: abort start-up, or end the failed-state wait."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.raising = True
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignal:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()
        if self.raising:
            raise _Stopped

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


WORKER_CLASSES = ("gthread", "gthread-plain", "sync")
"""What ``--worker-class`` takes: the names of :data:`toolkit.serving.gunicorn_app.WORKER_CLASSES`,
spelled out here because options are parsed before the port is bound, and importing gunicorn
first would delay the 503 answers to /ping."""

ENVIRONMENT_HELP = """\
Everything else comes from the environment (docs/serving.md, "Environment"); a malformed value
exits 2 at once, naming the variable. The ones people reach for most:
  SAGEMAKER_BIND_TO_PORT          listen port (8080)
  OPTML_BIND_HOST                 listen address (0.0.0.0)
  SAGEMAKER_MODEL_SERVER_WORKERS  gunicorn workers (the cgroup-aware CPU count)
  SAGEMAKER_MODEL_SERVER_TIMEOUT  worker timeout in seconds (60)
  OPTML_SERVER_THREADS            request threads per worker (4; --threads wins)
  SAGEMAKER_PROGRAM               the handler module (inference.py)
  SAGEMAKER_MAX_PAYLOAD_IN_MB     request body limit, 0 = unlimited (6)
  SAGEMAKER_CONTAINER_LOG_LEVEL   log level, a number or a name (INFO)"""


class _OneLineParser(argparse.ArgumentParser):
    """A bad option is one line on stderr and exit status 2, like a bad variable (argparse's own
    error prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def option_parser() -> argparse.ArgumentParser:
    """The parser of ``optml serve`` (and of ``docker run IMAGE serve``): its ``--help`` is the
    one ``optml serve --help`` prints."""
    parser = _OneLineParser(
        prog="optml serve", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start the model server of the /opt/ml contract (what `docker run IMAGE "
        "serve` does).\nSettings come from the environment; these options exist for benchmarks "
        "and debugging.", epilog=ENVIRONMENT_HELP)
    parser.add_argument("--worker-class", choices=WORKER_CLASSES, default="gthread",
                        help="gunicorn worker class: gthread (default) reserves threads for "
                        "/ping so a busy worker still answers it; gthread-plain does not; sync "
                        "is one request at a time per worker")
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                        help="request threads per worker (gthread kinds; wins over "
                        "OPTML_SERVER_THREADS; default 4, or batch_max_size when larger)")
    return parser


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return option_parser().parse_args(list(argv))


def configure_logging(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    logger = logging.getLogger("optml")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def code_search_path(serving: ServingSettings, layout: Layout) -> list[Path]:
    """Where the inference module may live, in order."""
    search = [layout.model_code_dir]
    submit = serving.submit_directory
    if submit and "://" not in submit:
        search.append(Path(submit))
    search.append(layout.code_dir)
    return search


def install_requirements(settings: Settings, search: Sequence[Path]) -> None:
    """pip-install the user's requirements.txt (found beside the inference code) before import."""
    if not settings.serving.install_requirements:
        return
    from toolkit.training import requirements  # lazily: pip machinery is not always needed

    for directory in search:
        if not directory.is_dir():
            continue
        found = requirements.find_requirements_file(directory)
        if found is not None:
            log.info("installing %s", found)
            requirements.install_requirements(found, python=sys.executable,
                                              environ=settings.environ)
            return


def main(argv: list[str]) -> int:
    """Run the model server until SIGTERM; returns the process exit status."""
    options = _parse_args(argv)
    try:
        settings = Settings.from_environ()
        serving = settings.serving
    except ConfigError as exc:
        print(f"optml serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(serving.log_level)
    try:
        listener = bind_listener(serving.port, serving.bind_host)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", serving.bind_host, serving.port, exc)
        return 1
    responder = PreBindResponder(listener).start()
    log.info("listening on %s:%d; /ping answers 503 until the model is loaded",
             serving.bind_host, serving.port)
    run_dir: Path | None = None
    master = os.getpid()
    try:
        with _StopSignal() as stop:
            try:
                if serving.multi_model:
                    run_dir = Path(tempfile.mkdtemp(prefix="optml-serve-"))
                runtime = _prepare(settings, run_dir)
            except _Stopped:
                log.info("stopped during start-up")
                responder.stop()
                return 0
            except Exception as exc:  # noqa: BLE001 - any start-up failure: 503 until stopped
                stop.raising = False
                return _fail_until_stopped(responder, exc, stop.event)
        responder.stop()
        return _serve(settings, runtime, listener, options, master)
    finally:
        if os.getpid() == master:
            listener.close()  # a no-op once detached
            if run_dir is not None:
                shutil.rmtree(run_dir, ignore_errors=True)


def _prepare(settings: Settings, run_dir: Path | None):
    """Requirements, handlers and (with preload) the model: everything before taking traffic."""
    from toolkit.serving.codecs import default_registry
    from toolkit.serving.handlers import load_handlers
    from toolkit.serving.multimodel import ModelRegistry
    from toolkit.serving.runtime import ExecutionDefaults, ServingRuntime

    serving, layout = settings.serving, settings.layout
    search = code_search_path(serving, layout)
    install_requirements(settings, search)
    codecs = default_registry()
    handlers = load_handlers(program=serving.program, search=search,
                             default_handlers=serving.default_handlers, codecs=codecs)
    workers = serving.workers or cpu_count()
    default_accept = (serving.default_accept or "").strip().lower()
    if default_accept and not handlers.custom_output and default_accept not in codecs.encodable:
        log.warning("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=%s cannot be produced by the default "
                    "output_fn (supported: %s): requests without Accept will get 406",
                    default_accept, ", ".join(codecs.encodable))
    runtime = ServingRuntime(
        handlers=handlers, codecs=codecs, model_dir=layout.model_dir,
        default_accept=serving.default_accept, max_payload_mb=serving.max_payload_mb,
        debug_errors=serving.debug_errors,
        execution=ExecutionDefaults(serving.max_concurrent_transforms or workers,
                                    serving.batch_strategy or "MULTI_RECORD",
                                    serving.max_payload_mb),
        registry=ModelRegistry(run_dir).create() if run_dir is not None else None)
    if runtime.models is None and serving.preload_model:
        started = time.monotonic()
        runtime.load_model()
        log.info("model loaded in %.2f s (preloaded; workers share it copy-on-write)",
                 time.monotonic() - started)
    return runtime


def _fail_until_stopped(responder: PreBindResponder, exc: BaseException,
                        stopped: threading.Event) -> int:
    from toolkit.serving.runtime import describe_failure

    message = describe_failure(exc)
    responder.set_failed(message)
    cause = getattr(exc, "cause", exc)
    log.error("FATAL: the server cannot start: %s\n/ping answers 503 with this message until "
              "the container is stopped", message, exc_info=cause)
    stopped.wait()
    responder.stop()
    return 1


def _serve(settings: Settings, runtime, listener, options: argparse.Namespace,
           master: int) -> int:
    from toolkit.serving.app import close_connection_when_asked, create_app
    from toolkit.serving.gunicorn_app import GunicornOptions, OptmlGunicorn, request_threads

    serving = settings.serving
    handlers = runtime.handlers
    batching = handlers.batch_predict_fn is not None and runtime.models is None
    batch_max_size = handlers.batch_max_size if batching else None
    threads = request_threads(options.threads or serving.threads, batch_max_size=batch_max_size)
    if batch_max_size is not None and options.worker_class != "sync":
        log.info("micro-batching: %d request threads per worker, batch_max_size %d", threads,
                 batch_max_size)
        if threads < batch_max_size:
            log.warning("micro-batching: %d request threads per worker cap every batch at %d, "
                        "below batch_max_size %d (raise --threads / OPTML_SERVER_THREADS)",
                        threads, threads, batch_max_size)
    app = close_connection_when_asked(create_app(runtime))
    registry = runtime.models.registry if runtime.models is not None else None
    unix_listener = None
    if serving.unix_socket:
        try:
            unix_listener = bind_unix_listener(serving.unix_socket)
        except OSError as exc:  # the port still serves: the socket is only a shortcut
            log.warning("cannot listen on %s (OPTML_UNIX_SOCKET): %s", serving.unix_socket, exc)
    gunicorn = OptmlGunicorn(
        app,
        GunicornOptions(listener_fd=listener.fileno(), workers=serving.workers or cpu_count(),
                        timeout_seconds=serving.timeout_seconds, log_level=serving.log_level,
                        worker_class=options.worker_class,
                        threads=threads,
                        unix_listener_fd=unix_listener.fileno() if unix_listener else None),
        post_worker_init=runtime.after_fork,
        child_exit=registry.forget_worker if registry is not None else (lambda pid: None))
    listener.detach()  # gunicorn owns the descriptor now and closes it when it stops
    if unix_listener is not None:
        unix_listener.detach()
    try:
        gunicorn.run()
    except SystemExit as exc:
        if os.getpid() != master:
            raise  # a gunicorn worker finishing: it must not run the master's clean-up
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if os.getpid() == master and serving.unix_socket and unix_listener is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(serving.unix_socket)
    return 0
