"""How each server of the comparison is started, all with the same model tree and worker count.

A :class:`Server` turns a :class:`LaunchContext` (model tree, private scratch dir, port, worker
count) into started :class:`~bench.serving.processes.ManagedProcess` objects. Configuration files
go to the scratch dir; nothing is written outside it, and every process runs in its own group so
the runner can stop it completely.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.serving.fixtures import APPS_DIR
from bench.serving.processes import LOOPBACK, ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MMS_VENV = Path(os.environ.get("OPTML_BENCH_CACHE", Path.home() / ".cache" / "optml-bench")
                        ) / "mms-venv"


class PeerMissingError(RuntimeError):
    """A peer's software is not installed; the message says how to install it."""


@dataclass(frozen=True)
class LaunchContext:
    """Everything a server needs to start: the same for every server of one case."""

    base_dir: Path
    """``SAGEMAKER_BASE_DIR``: holds ``model/`` (with ``model/code/inference.py``)."""
    workdir: Path
    """This server's private scratch dir (logs, configs, sockets)."""
    port: int
    workers: int
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """Case-specific variables (e.g. optml's batching settings); only optml reads them."""

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"


class Server(Protocol):
    """One contender: its name, how long it may take to start, and how to start it."""

    name: str
    ready_timeout_s: float

    def launch(self, ctx: LaunchContext) -> list[ManagedProcess]:
        """Start the server's processes (already running when this returns)."""
        ...


def _clean_env() -> dict[str, str]:
    """The parent environment without any serving variable that could leak into a contender."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SAGEMAKER_", "OPTML_", "MMS_", "PYTHONPATH"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _contract_env(ctx: LaunchContext) -> dict[str, str]:
    env = _clean_env()
    env.update({"SAGEMAKER_BASE_DIR": str(ctx.base_dir),
                "SAGEMAKER_BIND_TO_PORT": str(ctx.port),
                "SAGEMAKER_MODEL_SERVER_WORKERS": str(ctx.workers)})
    return env


def _process(name: str, argv: list[str], env: Mapping[str, str], ctx: LaunchContext,
             cwd: Path | None = None) -> ManagedProcess:
    return ManagedProcess(name=name, argv=argv, env=env, cwd=cwd or ctx.workdir,
                          log_path=ctx.workdir / f"{name}.log").start()


@dataclass
class OptmlServe:
    """optml's own ``serve`` (gunicorn + Flask), started as images start it."""

    name: str = "optml"
    ready_timeout_s: float = 60.0
    argv: tuple[str, ...] = (sys.executable, "-m", "toolkit.cli", "serve")
    tree: Path = REPO_ROOT
    """Where ``toolkit`` is imported from (``-m`` puts the working dir first on sys.path): the
    repository, or an export of an older commit for a before/after in the same run."""

    def launch(self, ctx: LaunchContext) -> list[ManagedProcess]:
        env = _contract_env(ctx)
        env.update(ctx.extra_env)
        return [_process(self.name, list(self.argv), env, ctx, cwd=self.tree)]


@dataclass
class MmsReference:
    """The reference inference toolkit on Multi Model Server, from its own virtual env.

    Started through the toolkit's documented ``start_model_server`` (see ``apps/mms_launch.py``)
    with its default handler service, which loads ``model/code/inference.py``. MMS writes a pid
    file into the temp dir and logs into ``LOG_LOCATION``: both point into the scratch dir.
    """

    venv: Path = DEFAULT_MMS_VENV
    name: str = "mms"
    ready_timeout_s: float = 180.0

    def launch(self, ctx: LaunchContext) -> list[ManagedProcess]:
        python = self.venv / "bin" / "python"
        if not (self.venv / "bin" / "multi-model-server").exists():
            raise PeerMissingError(
                f"no Multi Model Server in {self.venv}: run scripts/bench-serving-setup.sh")
        if shutil.which("java") is None:
            raise PeerMissingError("no java on PATH: run scripts/bench-serving-setup.sh")
        tmp = ctx.workdir / "tmp"
        logs = ctx.workdir / "logs"
        tmp.mkdir(exist_ok=True)
        logs.mkdir(exist_ok=True)
        env = _contract_env(ctx)
        env.update({"PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                    "VIRTUAL_ENV": str(self.venv), "TMPDIR": str(tmp), "TEMP": str(tmp),
                    "LOG_LOCATION": str(logs), "METRICS_LOCATION": str(logs)})
        argv = [str(python), str(APPS_DIR / "mms_launch.py"), str(ctx.workdir / "mms.properties")]
        return [_process("mms", argv, env, ctx)]


_NGINX_MAIN = """\
# Written by an optml benchmark; everything nginx writes stays under {root}.
{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{
  worker_connections 1024;
}}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
{http}
}}
"""

_BYO_HTTP = """\
  # the classic BYO front: nginx -> gunicorn unix socket
  upstream gunicorn {{
    server unix:{socket};
  }}
  server {{
    listen {host}:{port} deferred;
    client_max_body_size 6m;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    proxy_read_timeout 60s;
    location ~ ^/(ping|invocations) {{
      proxy_set_header Host $http_host;
      proxy_redirect off;
      proxy_pass http://gunicorn;
    }}
    location / {{
      return 404 "{{}}";
    }}
  }}"""


def nginx_main_config(root: Path, http: str, as_root: bool) -> str:
    """An nginx.conf with one worker, its files under ``root`` and ``http`` as the http block.

    Run as root, nginx would switch its worker to ``nobody``, which cannot reach a socket in a
    0700 temp dir: the worker then keeps root's identity instead.
    """
    return _NGINX_MAIN.format(user="user root;\n" if as_root else "", root=root, http=http)


def nginx_config(root: Path, socket: Path, port: int, as_root: bool) -> str:
    """The nginx.conf of the BYO peer."""
    return nginx_main_config(root, _BYO_HTTP.format(socket=socket, host=LOOPBACK, port=port),
                             as_root)


def _gunicorn(workers: int, bind: str, app: str, worker_class: str,
              threads: int = 1) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class",
            worker_class, "--threads", str(threads), "--bind", bind, "--timeout", "60", "--keep-alive", "5",
            "--pythonpath", str(APPS_DIR), app]


@dataclass
class NginxGunicornFlask:
    """The classic bring-your-own pattern: nginx in front, sync gunicorn workers, Flask app."""

    name: str = "nginx+gunicorn"
    ready_timeout_s: float = 60.0
    worker_class: str = "sync"

    def launch(self, ctx: LaunchContext) -> list[ManagedProcess]:
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                          else None)
        if nginx is None:
            raise PeerMissingError("nginx is not installed: run scripts/bench-serving-setup.sh")
        root = ctx.workdir / "nginx"
        root.mkdir(exist_ok=True)
        socket = ctx.workdir / "gunicorn.sock"
        conf = root / "nginx.conf"
        conf.write_text(nginx_config(root, socket, ctx.port, as_root=os.geteuid() == 0))
        env = _clean_env()
        env["BENCH_MODEL_DIR"] = str(ctx.model_dir)
        gunicorn = _process("byo-gunicorn", _gunicorn(ctx.workers, f"unix:{socket}",
                                                       "byo_flask_app:app", self.worker_class),
                            env, ctx)
        try:
            front = _process("byo-nginx", [nginx, "-p", f"{root}/", "-c", str(conf), "-e",
                                           str(root / "error.log")], _clean_env(), ctx)
        except BaseException:
            gunicorn.stop()  # the caller never learns of it: stop it here
            raise
        return [front, gunicorn]


@dataclass
class BareGunicorn:
    """The ceiling: gunicorn serving a bare WSGI callable, no framework, no model.

    Nearly optml ``serve``'s worker model (gthread, 4 threads per worker, keep-alive), so the
    ratio to it is about the cost of optml's own code: Flask, negotiation, the handler chain.
    Plain gthread, though: without optml's /ping threads and accept balancing, so at c=16 its
    connections may crowd onto one worker (docs/performance-serving.md, "Tail latency").
    """

    name: str = "bare-gunicorn"
    ready_timeout_s: float = 60.0
    worker_class: str = "gthread"
    threads: int = 4

    def launch(self, ctx: LaunchContext) -> list[ManagedProcess]:
        argv = _gunicorn(ctx.workers, f"{LOOPBACK}:{ctx.port}", "hello_wsgi:app",
                         self.worker_class, self.threads)
        return [_process("bare-gunicorn", argv, _clean_env(), ctx)]
