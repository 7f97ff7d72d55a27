"""A no-op processing job end to end: optml local mode's Docker backend vs a bare ``docker run``.

Run:  .venv/bin/python bench/bench_processing.py [--repeat 5] [--no-staged] [--json FILE]
          [--profile N]

Image: ``optml/base:latest`` (scripts/build-images.sh), used as it is; the no-op is ``true``
(``/usr/bin/true``), the image's ENTRYPOINT replaced in every variant alike.

- peer ``docker run``: ``docker run --rm --entrypoint true IMAGE``, timed from launch until the
  command returns (the container has exited and been removed).
- optml (poll): ``create_processing_job`` on the Docker backend (``local_mode.client``; one
  instance, ``ContainerEntrypoint ["true"]``, no inputs or outputs) until DescribeProcessingJob,
  polled every ``--poll`` seconds (default 0.02), says Completed: runner spawned, job network,
  config files, container created/attached/started/waited for, teardown, status written.
- optml (waiter): the same job until ``get_waiter("processing_job_completed_or_stopped")``
  returns, as a user would wait (local waiters poll every 0.05 s, so this adds up to 0.05 s).
- Both hand each Create to a runner that waits ready (docs/local-mode.md); "runner started at
  Create" is optml (poll) from a second client with ``OPTML_LOCAL_WARM_RUNNERS=false``.
- optml (staged, unless ``--no-staged``): two instances, one File-mode input of a few small
  files (``file://``, copied into both hosts' trees) and one output: what staging costs.
  No target; its ratio to the bare run is printed for scale.

``CreationTime`` to ``ProcessingEndTime`` (the time inside optml, without the client's poll) is
printed beside. The variants run once each unrecorded (engine caches warm for all), then
``--repeat`` rounds, the leading variant rotating each round so load weighs on all alike; best,
median and p90 (nearest rank) are printed, and the ratios of medians (target: optml (poll) <= 1.5x
the bare run). The machine is shared: compare within one run.

``--profile N`` then runs N more jobs (one instance, as optml (poll)) whose runner is this file
(``python -m bench_processing`` with ``bench/`` on PYTHONPATH) wrapping the runner's phases, its
Docker Engine API requests and the client's calls in wall-clock timestamps. It prints the median
of each phase (consecutive, so they add up to create -> Completed) and of each event, and the
engine's own floor: create/start/wait/remove of the same container through the Docker SDK on a
warm connection, on the default network, with the job's limits, and on a network of its own
made and removed around it. The wrappers name local mode's internals: if those change, only
``--profile`` needs updating. ``--json`` also keeps every profiled job's timeline.

About 40 s with the defaults on a 2-core machine (plus ~2 s per profiled job).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

IMAGE = "optml/base:latest"
NOOP = ["true"]
ROLE = "arn:aws:iam::000000000000:role/local"
INSTANCE_TYPE = "ml.m5.large"
WAITER = "processing_job_completed_or_stopped"
SETTLED = {"Completed", "Failed", "Stopped"}
TARGET_RATIO = 1.5
"""Issue 18: the fixed cost of a no-op job within 1.5x a bare `docker run` (was 2x)."""
TRACE_ENV = "OPTML_BENCH_PROCESSING_TRACE"
"""Set (to the trace file) in the environment of a profiled job's runner: this file then runs
the runner instead of the benchmark."""
BENCH_DIR = Path(__file__).resolve().parent


# -- figures -----------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (as bench_wire_api.py's)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclasses.dataclass
class Variant:
    """One way of getting a no-op container run, and its rounds."""

    key: str
    label: str
    run: Callable[[], tuple[float, float | None]]
    """One round: (seconds, seconds inside optml or None)."""
    seconds: list[float] = dataclasses.field(default_factory=list)
    inside: list[float] = dataclasses.field(default_factory=list)

    def record(self) -> None:
        seconds, inside = self.run()
        self.seconds.append(seconds)
        if inside is not None:
            self.inside.append(inside)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label, "seconds": self.seconds, "best_s": min(self.seconds),
            "median_s": self.median, "p90_s": percentile(self.seconds, 90)}
        if self.inside:
            out["inside_optml_median_s"] = statistics.median(self.inside)
        return out


# -- the peers ---------------------------------------------------------------------------------
def require_image(image: str) -> None:
    found = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                           check=False)
    if found.returncode != 0:
        sys.exit(f"{image} is missing: build it with scripts/build-images.sh")


def bare_docker_run() -> tuple[float, None]:
    started = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "--entrypoint", NOOP[0], *NOOP[1:], IMAGE],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, None


def processing_request(name: str, instances: int = 1, data: Path | None = None,
                       output: Path | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ProcessingJobName": name, "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": NOOP},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": instances, "InstanceType": INSTANCE_TYPE, "VolumeSizeInGB": 1}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    if data is not None:
        request["ProcessingInputs"] = [{"InputName": "data", "S3Input": {
            "S3Uri": data.as_uri(), "LocalPath": "/opt/ml/processing/input/data",
            "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated"}}]
    if output is not None:
        request["ProcessingOutputConfig"] = {"Outputs": [{"OutputName": "result", "S3Output": {
            "S3Uri": output.as_uri(), "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]}
    return request


def settled_job(sm: Any, name: str, started: float) -> tuple[float, float]:
    """(seconds since ``started``, CreationTime to ProcessingEndTime) of a job that must have
    Completed (the benchmark stops on anything else)."""
    elapsed = time.perf_counter() - started
    description = sm.describe_processing_job(ProcessingJobName=name)
    if description["ProcessingJobStatus"] != "Completed":
        sys.exit(f"optml job {name} ended {description['ProcessingJobStatus']}: "
                 f"{description.get('FailureReason')}")
    inside = (description["ProcessingEndTime"] - description["CreationTime"]).total_seconds()
    return elapsed, inside


def poll_until_settled(sm: Any, name: str, poll: float) -> str:
    while True:
        status = sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"]
        if status in SETTLED:
            return str(status)
        time.sleep(poll)


def optml_polled(sm: Any, poll: float, **shape: Any) -> tuple[float, float]:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    sm.create_processing_job(**processing_request(name, **shape))
    poll_until_settled(sm, name, poll)
    return settled_job(sm, name, started)


def optml_waited(sm: Any) -> tuple[float, float]:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    sm.create_processing_job(**processing_request(name))
    sm.get_waiter(WAITER).wait(ProcessingJobName=name)
    return settled_job(sm, name, started)


def small_input(root: Path) -> Path:
    """Four 16 KB files: staging's fixed cost, not a copy's bandwidth."""
    data = root / "input-data"
    data.mkdir()
    for index in range(4):
        (data / f"part-{index}.csv").write_bytes(b"1,2,3\n" * 2730)
    return data


def stop_leftovers(sm: Any) -> None:
    """Stop what an interrupted run left in progress (its runner then removes its containers
    and network), waiting up to 30 s."""
    page = sm.list_processing_jobs(StatusEquals="InProgress")
    names = [s["ProcessingJobName"] for s in page["ProcessingJobSummaries"]]
    for name in names:
        try:
            sm.stop_processing_job(ProcessingJobName=name)
        except Exception as exc:  # noqa: BLE001 - it may have ended meanwhile; keep going
            print(f"could not stop {name}: {exc}", file=sys.stderr)
    deadline = time.monotonic() + 30
    while names and time.monotonic() < deadline:
        names = [n for n in names if sm.describe_processing_job(ProcessingJobName=n)
                 ["ProcessingJobStatus"] not in SETTLED]
        time.sleep(0.1)


# -- profile: timestamps on both sides of a job ------------------------------------------------
class Trace:
    """Events (label, start, end; wall-clock seconds) appended as JSON lines to one file by the
    benchmark and by the profiled runners (one small O_APPEND write each, so threads and
    processes never interleave inside a line)."""

    def __init__(self, path: Path, side: str) -> None:
        self.path, self.side = path, side

    def record(self, label: str, start: float, end: float) -> None:
        line = json.dumps({"side": self.side, "label": label, "t0": start, "t1": end}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def mark(self, label: str) -> None:
        now = time.time()
        self.record(label, now, now)

    def wrap(self, owner: Any, attribute: str, label: str | Callable[..., str]) -> None:
        """Replace ``owner.attribute`` with a wrapper recording each call."""
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                name = label(*args, **kwargs) if callable(label) else label
                self.record(name, started, time.time())

        setattr(owner, attribute, timed)

    def wrap_engine_requests(self) -> None:
        """Every Docker Engine API request of docker-py (``_post_json`` goes through
        ``_post``), named by method and path with ids and versions left out."""
        from docker.api.client import APIClient

        for method in ("_get", "_post", "_put", "_delete"):
            verb = method[1:].upper()
            self.wrap(APIClient, method,
                      lambda _self, url, *_, _verb=verb, **__: f"engine {_verb} {_api_path(url)}")


def _api_path(url: str) -> str:
    path = re.sub(r"^/v\d+\.\d+(?=/)", "", urllib.parse.urlparse(url).path)
    path = re.sub(r"^/images/.+/json$", "/images/{image}/json", path)
    return re.sub(r"/(containers|networks)/(?!create$|json$|prune$)[^/]+", r"/\1/{id}", path)


def traced_runner(trace_path: str, argv: list[str]) -> int:
    """The processing runner (``local_mode.processing.runner.main``), its phases timed."""
    trace = Trace(Path(trace_path), "runner")
    trace.mark("interpreter up")
    started = time.time()
    import local_mode.cluster.docker as docker_backend
    import local_mode.processing.runner as runner
    from local_mode.cluster.supervisor import Supervisor
    from local_mode.state import ResourceDir

    trace.record("import local_mode.processing.runner", started, time.time())
    started = time.time()
    import docker.api.client  # noqa: F401 - timed apart: the runner imports it at its first call

    trace.record("import docker (SDK)", started, time.time())
    trace.wrap_engine_requests()
    for attribute, label in (("check", "backend.check (ping, image)"),
                             ("prepare", "backend.prepare (network)"),
                             ("start", "backend.start (create, attach, start)"),
                             ("teardown", "backend.teardown (sweep)")):
        trace.wrap(docker_backend.DockerBackend, attribute, label)
    trace.wrap(docker_backend, "reachable_client", "connect + ping")
    trace.wrap(docker_backend, "connect", "connect (stream client)")
    trace.wrap(docker_backend.DockerHostRun, "cleanup", "host cleanup (remove, reclaim walk)")
    trace.wrap(docker_backend, "_needs_reclaim", "reclaim walk")
    for attribute, label in (("run", "runner.run"), ("_lay_out", "lay out trees"),
                             ("_process", "process (start .. exit .. cleanup)"),
                             ("_finish", "finish (upload, teardown, status)")):
        trace.wrap(runner.ProcessingRunner, attribute, label)
    trace.wrap(Supervisor, "supervise", "supervise (until exit seen)")
    trace.wrap(ResourceDir, "update", "state write")
    trace.wrap(runner, "make_removable", "make_removable")
    try:
        trace.wrap(runner, "main", "runner main (incl. prologue/epilogue)")
        return runner.main(argv)
    finally:
        trace.mark("exiting")


def profile(state: Path, root: Path, jobs: int, poll: float) -> dict[str, Any]:
    """``jobs`` traced one-instance jobs; the per-label medians of their timelines."""
    import local_mode
    import local_mode.runners as runners
    from toolkit.settings import Settings

    trace_path = root / "trace.jsonl"
    trace = Trace(trace_path, "client")
    environ = dict(os.environ)
    environ[TRACE_ENV] = str(trace_path)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR),
                                                          environ.get("PYTHONPATH")]))
    sm = local_mode.client("sagemaker", settings=Settings.from_environ(environ),
                           state_dir=state, backend="docker")
    original_spawn = runners.spawn

    def spawn(store: Any, resource: Any, lifecycle: Any, backend: str, env: Any) -> None:
        traced = dataclasses.replace(lifecycle, module=Path(__file__).stem)
        started = time.time()
        original_spawn(store, resource, traced, backend, env)
        trace.record("spawn runner (Popen)", started, time.time())

    floor = engine_floor(jobs)  # before the engine requests are wrapped
    runners.spawn = spawn  # type: ignore[assignment]
    trace.wrap_engine_requests()
    timelines: list[list[dict[str, Any]]] = []
    describes: list[int] = []
    try:
        for _ in range(jobs):
            trace_path.unlink(missing_ok=True)
            name = f"bench-{uuid.uuid4().hex[:10]}"
            zero = time.time()
            sm.create_processing_job(**processing_request(name))
            trace.record("create_processing_job", zero, time.time())
            polls = 0
            while True:
                started = time.time()
                status = sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"]
                polls += 1
                if status in SETTLED:
                    trace.record(f"describe says {status}", started, time.time())
                    break
                time.sleep(poll)
            describes.append(polls)
            _wait_for_runner_exit(trace_path)
            timelines.append(_timeline(trace_path, zero))
    finally:
        runners.spawn = original_spawn
    return {"jobs": jobs, "phases_ms": _median_phases(timelines),
            "events": _median_timeline(timelines),
            "describes_median": statistics.median(describes),
            "timelines": timelines,
            "engine_floor_ms": floor}


def _wait_for_runner_exit(trace_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if '"exiting"' in trace_path.read_text():
            return
        time.sleep(0.02)


def _timeline(trace_path: Path, zero: float) -> list[dict[str, Any]]:
    """One job's events in time order, relative to its create call; a label seen again gets
    ``#2``, ``#3``..."""
    events = [json.loads(line) for line in trace_path.read_text().splitlines() if line]
    events.sort(key=lambda e: (e["t0"], -e["t1"]))
    seen: dict[str, int] = {}
    out = []
    for event in events:
        key = f"{event['side']}: {event['label']}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key += f" #{seen[key]}"
        out.append({"event": key, "start_ms": (event["t0"] - zero) * 1000,
                    "ms": (event["t1"] - event["t0"]) * 1000})
    return out


PHASE_BOUNDARIES = (
    ("client: spawn runner (Popen)", 1, "create call: validate, image check, spawn"),
    ("runner: interpreter up", 0, "runner interpreter start"),
    ("runner: import docker (SDK)", 1, "runner imports (local_mode, docker SDK)"),
    ("runner: backend.check (ping, image)", 0, "runner prologue (settings, state, pid file)"),
    ("runner: backend.check (ping, image)", 1, "check: connect (/version), ping, image"),
    ("runner: backend.prepare (network)", 1, "prepare: connect again, network create"),
    ("runner: engine POST /containers/create", 0, "lay out trees, state write, log"),
    ("runner: engine POST /containers/create", 1, "container create"),
    ("runner: engine POST /containers/{id}/start", 1, "attach, inspect, start"),
    ("runner: engine POST /containers/{id}/wait", 0, "start returned -> wait thread issues /wait"),
    ("runner: engine POST /containers/{id}/wait", 1, "container runs, /wait returns"),
    ("runner: host cleanup (remove, reclaim walk)", 1, "inspect, pumps, container remove"),
    ("runner: backend.teardown (sweep)", 1, "teardown: sweep, network remove"),
    ("runner: state write #2", 1, "terminal status write"),
    ("client: describe says Completed", 1, "until a describe sees Completed"),
)
"""Consecutive points of a profiled job (event, 0 for its start / 1 for its end, and the phase
that ends there): the phases add up to the create-to-Completed time."""


def _phases(timeline: list[dict[str, Any]]) -> dict[str, float | None]:
    """One job's phases in ms (None where an event is missing)."""
    events = {e["event"]: e for e in timeline}
    out: dict[str, float | None] = {}
    previous: float | None = 0.0
    for event, end, phase in PHASE_BOUNDARIES:
        found = events.get(event)
        point = None if found is None else found["start_ms"] + end * found["ms"]
        out[phase] = None if point is None or previous is None else point - previous
        previous = point
    out["total"] = previous
    return out


def _median_phases(timelines: list[list[dict[str, Any]]]) -> dict[str, float | None]:
    per_job = [_phases(t) for t in timelines]
    out: dict[str, float | None] = {}
    for phase in per_job[0]:
        values = [p[phase] for p in per_job if p[phase] is not None]
        out[phase] = statistics.median(values) if values else None  # type: ignore[type-var]
    return out


def _median_timeline(timelines: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    by_event: dict[str, list[dict[str, Any]]] = {}
    for timeline in timelines:
        for event in timeline:
            by_event.setdefault(event["event"], []).append(event)
    merged = [{"event": name, "start_ms": statistics.median(e["start_ms"] for e in events),
               "ms": statistics.median(e["ms"] for e in events), "seen": len(events)}
              for name, events in by_event.items()]
    return sorted(merged, key=lambda e: (e["start_ms"], -e["ms"]))


def engine_floor(rounds: int) -> dict[str, dict[str, float]]:
    """Median ms of each step of running the no-op container through docker-py on a warm
    connection, no attach: what any API-driven runner pays at least. ``plain``: the default
    network; ``limits``: plus the job's CPU/memory/shm limits; ``network``: plus a network of
    its own, made before and removed after (as a job's)."""
    import docker

    from local_mode.docker_engine import limits_host_config
    from local_mode.instance_types import Machine, limits_for

    limits = limits_host_config(limits_for(INSTANCE_TYPE, Machine.current()))
    client = docker.from_env(timeout=60)
    api = client.api
    steps: dict[str, dict[str, list[float]]] = {}

    def timed(variant: str, step: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            steps.setdefault(variant, {}).setdefault(step, []).append(
                (time.perf_counter() - started) * 1000)

    def one(variant: str, network: str | None, host_config: dict[str, Any]) -> None:
        config = api.create_host_config(network_mode=network, **host_config) \
            if network or host_config else None
        started = time.perf_counter()
        if network:
            timed(variant, "network create", lambda: api.create_network(network,
                                                                        driver="bridge"))
        created = timed(variant, "create", lambda: api.create_container(
            IMAGE, entrypoint=NOOP, command=[], host_config=config))
        timed(variant, "start", lambda: api.start(created["Id"]))
        timed(variant, "wait", lambda: api.wait(created["Id"]))
        timed(variant, "remove", lambda: api.remove_container(created["Id"], force=True,
                                                              v=True))
        if network:
            timed(variant, "network remove", lambda: api.remove_network(network))
        steps[variant].setdefault("total", []).append((time.perf_counter() - started) * 1000)

    try:
        for _ in range(rounds):
            one("plain", None, {})
            one("limits", None, limits)
            one("network", f"optml-bench-{uuid.uuid4().hex[:8]}", limits)
    finally:
        client.close()
    return {variant: {step: statistics.median(values) for step, values in by_step.items()}
            for variant, by_step in steps.items()}


def print_profile(figures: dict[str, Any]) -> None:
    print(f"\n== profile: {figures['jobs']} traced job(s), medians, ms from the create call; "
          f"{figures['describes_median']:g} describes per job ==")
    print(f"{'ms':>8}  phase (each ends where the next begins)")
    for phase, ms in figures["phases_ms"].items():
        print(f"{'-' if ms is None else f'{ms:.1f}':>8}  {phase}")
    print(f"\n{'start':>8} {'took':>8}  event (median start and duration of each)")
    for event in figures["events"]:
        print(f"{event['start_ms']:8.1f} {event['ms']:8.1f}  {event['event']}"
              + ("" if event["seen"] == figures["jobs"] else f"  (in {event['seen']} jobs)"))
    print("engine floor (docker-py, warm connection, no attach), medians:")
    for variant, steps in figures["engine_floor_ms"].items():
        print(f"  {variant:<8} " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()) + " ms")


# -- the run -----------------------------------------------------------------------------------
def main() -> int:
    trace_path = os.environ.get(TRACE_ENV)
    if trace_path:  # a profiled job's runner (see profile())
        return traced_runner(trace_path, sys.argv[1:])
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.02,
                        help="seconds between describes of optml (poll) (default 0.02)")
    parser.add_argument("--no-staged", action="store_true",
                        help="skip the two-instance job with an input and an output")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="then time the phases of N more jobs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    require_image(IMAGE)
    import local_mode
    from toolkit.settings import Settings

    with tempfile.TemporaryDirectory(prefix="optml-bench-") as tmp:
        root = Path(tmp)
        sm = local_mode.client("sagemaker", state_dir=root / "state", backend="docker")
        cold_sm = local_mode.client("sagemaker", state_dir=root / "state", backend="docker",
                                    settings=Settings.from_environ(
                                        {**os.environ, "OPTML_LOCAL_WARM_RUNNERS": "false"}))
        data = small_input(root)
        variants = [
            Variant("bare", f"docker run --rm {IMAGE} true", bare_docker_run),
            Variant("poll", f"optml, describe every {args.poll * 1000:g} ms",
                    lambda: optml_polled(sm, args.poll)),
            Variant("waiter", "optml, waiter (0.05 s polls)", lambda: optml_waited(sm)),
            Variant("cold", "  runner started at Create",
                    lambda: optml_polled(cold_sm, args.poll)),
        ]
        if not args.no_staged:
            variants.append(Variant(
                "staged", "optml, 2 hosts + input/output",
                lambda: optml_polled(sm, args.poll, instances=2, data=data,
                                     output=root / "output" / uuid.uuid4().hex[:8])))
        try:
            for variant in variants:  # warm the engine's caches for all, unrecorded
                variant.run()
            for round_index in range(args.repeat):
                shift = round_index % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    variant.record()
            profiled = profile(root / "state", root, args.profile, args.poll) \
                if args.profile else None
        finally:
            stop_leftovers(sm)
    figures = summarise(variants, args, profiled)
    print_table(figures)
    if profiled:
        print_profile(profiled)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def summarise(variants: list[Variant], args: argparse.Namespace,
              profiled: dict[str, Any] | None) -> dict[str, Any]:
    bare = variants[0]
    ratios = {v.key: v.median / bare.median for v in variants[1:]}
    return {"image": IMAGE, "command": NOOP, "repeat": args.repeat, "poll_s": args.poll,
            "cpus": os.cpu_count(), "loadavg_after": os.getloadavg(),
            "variants": {v.key: v.figures() for v in variants},
            "ratios_over_bare_median": ratios, "target_ratio": TARGET_RATIO,
            "target_met": ratios["poll"] <= TARGET_RATIO, "profile": profiled}


def print_table(figures: dict[str, Any]) -> None:
    print(f"== {figures['repeat']} round(s) interleaved; {figures['cpus']} CPUs, load "
          f"{figures['loadavg_after'][0]:.2f} ==")
    print(f"{'':<40}{'best':>8}{'median':>9}{'p90':>8}{'in optml':>10}{'ratio':>8}")
    for key, variant in figures["variants"].items():
        inside = variant.get("inside_optml_median_s")
        ratio = figures["ratios_over_bare_median"].get(key)
        print(f"{variant['label']:<40}{variant['best_s']:7.3f}s{variant['median_s']:8.3f}s"
              f"{variant['p90_s']:7.3f}s" + (f"{inside:9.3f}s" if inside is not None else
                                             f"{'':10}")
              + (f"{ratio:7.2f}x" if ratio is not None else ""))
    ratio = figures["ratios_over_bare_median"]["poll"]
    print(f"ratio optml (poll) / docker run (median): {ratio:.2f}x  (target <= "
          f"{figures['target_ratio']:g}x: {'met' if figures['target_met'] else 'MISSED'})")


if __name__ == "__main__":
    sys.exit(main())
