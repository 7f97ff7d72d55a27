"""The contract checks: what each one runs, and when it passes.

Training (each a separate run of the image, through local mode's Docker backend):

``train``
    The job (generated, or ``--job``) exits 0 and leaves at least one file in /opt/ml/model.
``failure-file``
    A run that fails (``--failing-job``, else the same job with every channel removed) exits
    non-zero and writes a non-empty /opt/ml/output/failure. When the generic trigger does not
    make the program fail, the check is SKIP: nothing was learnt about failures.
``train-sigterm``
    SIGTERM sent while the job runs ends the container within the grace, and not by SIGKILL.

Serving (one ``serve`` container, the model read-only at /opt/ml/model):

``ping``
    GET /ping answers 200 (each answer within the service's 2 s) before ``ready_timeout``, and
    keeps answering 200.
``startup-time``
    The first 200 on /ping came within ``startup_timeout`` of ``docker run``.
``invocations``
    POST /invocations with the user's sample answers 200.
``errors``
    An unsupported Content-Type gets a 4xx (415 expected), a garbage body a 4xx or a JSON/text
    error, and the server still serves afterwards.
``serve-sigterm``
    A request in flight when SIGTERM arrives is answered as before, and the container exits
    within the grace, not by SIGKILL.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_mode.check import jobs
from local_mode.check.errors import CheckInputError
from local_mode.check.probes import Answer, InFlight, NoAnswer, request
from local_mode.check.report import CheckResult, Report, Status, select
from toolkit.settings import Settings

TRAIN_CHECKS = ("train", "failure-file", "train-sigterm")
SERVE_CHECKS = ("ping", "startup-time", "invocations", "errors", "serve-sigterm")
ALL_CHECKS = TRAIN_CHECKS + SERVE_CHECKS
TITLES = {
    "train": "training exits 0 and writes /opt/ml/model",
    "failure-file": "a failed run writes /opt/ml/output/failure, exits non-zero",
    "train-sigterm": "SIGTERM ends a training run within the grace",
    "ping": "GET /ping answers 200",
    "startup-time": "docker run -> first 200 within the start-up budget",
    "invocations": "POST /invocations with the sample answers 200",
    "errors": "bad requests get 4xx, the server keeps serving",
    "serve-sigterm": "SIGTERM drains the in-flight request, then exits",
}

PING_TIMEOUT = 2.0
"""The service gives each /ping 2 s."""
INVOKE_TIMEOUT = 60.0
"""The service gives each /invocations 60 s."""
PING_INTERVAL = 0.1
PINGS_AFTER_READY = 3
SIGTERM_AFTER_MAX = 2.0
"""Without --sigterm-after: half the unsignalled run's time, at most this (seconds)."""
SIGTERM_AFTER_DEFAULT = 1.0
"""... or this when there was no unsignalled run to measure."""
NATURAL_END_FRACTION = 0.75
"""A 0 exit after SIGTERM counts as a reaction only if it came this much sooner than the
unsignalled run ended; later, the program may just have finished (inconclusive: SKIP)."""
IN_FLIGHT_SETTLE = 0.2
"""Between sending the in-flight request's first part and SIGTERM: the server reads it."""
DRAIN_DELAY = 0.5
"""Between SIGTERM and the last byte: the server is shutting down when the request completes."""
SIGKILL_EXIT = 137
UNSUPPORTED_TYPE = "application/x-optml-check-unsupported"
GARBAGE = b"\x00\xff\xfe{[ not a valid payload ,,\x80"
DEFAULT_PROBE = (b"{}", "application/json")
"""What the drain check sends when no sample was given."""
ERROR_BODY_TYPES = ("application/json", "text/plain", "application/problem+json")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class CheckOptions:
    """Everything a check run can be told besides the image (see ``optml check --help``)."""

    job: Path | None = None
    failing_job: Path | None = None
    model_data: str | Path | None = None
    sample: Path | None = None
    content_type: str | None = None
    accept: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    checks: Sequence[str] = ()
    grace: float = 30.0
    startup_timeout: float = 60.0
    ready_timeout: float = 180.0
    train_timeout: float = 600.0
    sigterm_after: float | None = None

    def validated(self) -> CheckOptions:
        """Check the inputs before anything runs; CheckInputError naming the option."""
        try:
            select(self.checks, ALL_CHECKS)
        except ValueError as exc:
            raise CheckInputError(f"--only: {exc}") from None
        for name in ("grace", "startup_timeout", "ready_timeout", "train_timeout"):
            if getattr(self, name) <= 0:
                raise CheckInputError(f"--{name.replace('_', '-')} must be > 0")
        if self.sigterm_after is not None and self.sigterm_after < 0:
            raise CheckInputError("--sigterm-after must be >= 0")
        for option, path in (("--job", self.job), ("--failing-job", self.failing_job),
                             ("--sample", self.sample)):
            if path is not None and not Path(path).is_file():
                raise CheckInputError(f"{option} {path}: no such file")
        if self.sample is not None:
            if not self.content_type:
                raise CheckInputError("--sample needs --content-type (the sample's media type)")
            if Path(self.sample).stat().st_size == 0:
                raise CheckInputError(f"--sample {self.sample}: the file is empty")
        if self.model_data is not None:
            text = str(self.model_data)
            if "://" not in text and not Path(text).exists():
                raise CheckInputError(f"--model-data {text}: no such file or directory")
        return self


def run_checks(image: str, options: CheckOptions | None = None, *,
               settings: Settings | None = None, client: Any = None) -> Report:
    """Run the selected checks against ``image`` (which must be in the local engine).

    Raises :class:`CheckInputError` for input it cannot use (and DockerUnavailable without an
    engine) before anything runs; a check that cannot be judged is SKIP with the reason.
    Every container, network and temporary directory made is gone when this returns.
    """
    from local_mode.training.backends.docker import reachable_client

    options = (options or CheckOptions()).validated()
    selected = select(options.checks, ALL_CHECKS)
    settings = settings or Settings.from_environ()
    own_client = client is None
    client = client or reachable_client()
    try:
        from local_mode.check.containers import image_present

        image_present(client, image)
        with tempfile.TemporaryDirectory(prefix="optml-check-") as scratch:
            session = _Session(image, options, settings, client, Path(scratch))
            return Report(image, tuple(session.run(selected)))
    finally:
        if own_client:
            client.close()


class _Session:
    """One check run: the runs it made and what later checks reuse from earlier ones."""

    def __init__(self, image: str, options: CheckOptions, settings: Settings, client: Any,
                 scratch: Path) -> None:
        from local_mode.check.containers import TrainingRunner

        self.image = image
        self.options = options
        self.client = client
        self.scratch = scratch
        self.trainer = TrainingRunner(settings, client, scratch / "jobs")
        self.settings = settings
        self.request = self._request()
        self.baseline: Any = None
        self.baseline_model: Path | None = None
        self.staged_model = self._stage_model_data()

    def _request(self) -> dict[str, Any]:
        o = self.options
        output = self.scratch / "output"
        if o.job is not None:
            return jobs.load_job(Path(o.job), self.image, output, o.hyperparameters,
                                 o.environment)
        request = jobs.generated_request(self.image, self.scratch / "data", output,
                                         o.hyperparameters, o.environment)
        jobs.job_spec(request)
        return request

    def run(self, selected: Sequence[str]) -> list[CheckResult]:
        results: list[CheckResult] = []
        serving = [n for n in selected if n in SERVE_CHECKS]
        failing = self._failing_request() if "failure-file" in selected else None
        if "train" in selected or (serving and self.options.model_data is None):
            self._run_baseline()  # train-sigterm compares with it only when it ran anyway
        if "train" in selected:
            results.append(self._judge_train())
        if failing is not None:
            results.append(self._check_failure(*failing))
        if "train-sigterm" in selected:
            results.append(self._check_train_sigterm())
        if serving:
            results.extend(self._serve_checks(serving))
        return results

    # -- training --------------------------------------------------------------------------
    def _spec(self, request: Mapping[str, Any], source: str) -> Any:
        return jobs.job_spec(request, source)

    def _run_baseline(self) -> None:
        spec = self._spec(jobs.renamed(self.request), "the job")
        keep = self.scratch / "trained-model"
        self.baseline = self.trainer.run(spec, self.options.train_timeout, keep_model=keep)
        if self.baseline.exit_code == 0 and self.baseline.model_files:
            self.baseline_model = keep

    def _judge_train(self) -> CheckResult:
        run = self.baseline
        what = f"job {self.options.job}" if self.options.job else "the generated job"
        if run.timed_out:
            return _fail("train", f"{what} did not finish within {_s(self.options.train_timeout)}"
                                  f" (killed){_log(run.log_tail)}", run.seconds)
        if run.exit_code != 0:
            failure = f"; failure file: {_one_line(run.failure_text)}" if run.failure_text \
                else "; no failure file"
            return _fail("train", f"{what} exited {run.exit_code}{failure}"
                                  f"{_log(run.log_tail)}", run.seconds)
        if not run.model_files:
            return _fail("train", f"{what} exited 0 but /opt/ml/model is empty: the job's "
                                  "model.tar.gz would hold nothing" + _log(run.log_tail),
                         run.seconds)
        return _pass("train", f"{what} exited 0 in {_s(run.seconds)} and wrote "
                              f"{_files(run.model_files)} to /opt/ml/model", run.seconds)

    def _failing_request(self) -> tuple[dict[str, Any], str]:
        o = self.options
        if o.failing_job is not None:
            return (jobs.load_job(Path(o.failing_job), self.image, self.scratch / "output",
                                  o.hyperparameters, o.environment),
                    f"the --failing-job {o.failing_job}")
        return jobs.without_channels(self.request), "the job without its channels"

    def _check_failure(self, request: dict[str, Any], what: str) -> CheckResult:
        run = self.trainer.run(self._spec(request, what), self.options.train_timeout)
        if run.timed_out:
            return _fail("failure-file", f"{what} did not finish within "
                                         f"{_s(self.options.train_timeout)} (killed)",
                         run.seconds)
        if run.exit_code == 0:
            if self.options.failing_job is not None:
                return _fail("failure-file", f"{what} exited 0, so no failure could be "
                                             "observed: give a job that makes it fail",
                             run.seconds)
            return _skip("failure-file", "the program exited 0 even without its channels, so "
                                         "no failure could be triggered; give a job that "
                                         "fails with --failing-job", run.seconds)
        if run.failure_text is None:
            return _fail("failure-file", f"{what} exited {run.exit_code} without writing "
                                         "/opt/ml/output/failure (the job's FailureReason "
                                         "would say nothing useful)" + _log(run.log_tail),
                         run.seconds)
        if not run.failure_text.strip():
            return _fail("failure-file", f"{what} exited {run.exit_code} and left "
                                         "/opt/ml/output/failure empty", run.seconds)
        return _pass("failure-file", f"{what} exited {run.exit_code}; failure file: "
                                     f"{_one_line(run.failure_text)}", run.seconds)

    def _signal_after(self) -> float:
        if self.options.sigterm_after is not None:
            return self.options.sigterm_after
        base = self.baseline
        if base is not None and not base.timed_out and base.exit_code is not None:
            return min(SIGTERM_AFTER_MAX, base.seconds / 2)
        return SIGTERM_AFTER_DEFAULT

    def _check_train_sigterm(self) -> CheckResult:
        grace = self.options.grace
        after = self._signal_after()
        spec = self._spec(jobs.renamed(self.request), "the job")
        run = self.trainer.run(spec, self.options.train_timeout, signal_after=after, grace=grace)
        if run.exited_before_signal:
            return _skip("train-sigterm", f"the program ended ({run.exit_code}) after "
                                          f"{_s(run.seconds)}, before SIGTERM was due at "
                                          f"{_s(after)}: give a longer job (--job) or a smaller"
                                          " --sigterm-after", run.seconds)
        if run.signalled_at is None:  # timed out before the signal was due
            return _fail("train-sigterm", f"the job did not reach the SIGTERM at {_s(after)}",
                         run.seconds)
        if run.exit_code is None:
            return _fail("train-sigterm", f"still running {_s(grace)} after SIGTERM (sent at "
                                          f"{_s(run.signalled_at)}), so the service would "
                                          "SIGKILL it: the signal does not reach the program "
                                          "or it is ignored (a PID 1 without a SIGTERM handler "
                                          "ignores it; use an exec-form ENTRYPOINT that "
                                          "forwards signals)" + _log(run.log_tail), run.seconds)
        after_signal = run.seconds_after_signal or 0.0
        if run.exit_code == SIGKILL_EXIT:
            return _fail("train-sigterm", f"exited {SIGKILL_EXIT} (SIGKILL) "
                                          f"{_s(after_signal)} after SIGTERM", run.seconds)
        base = self.baseline
        if run.exit_code == 0 and base is not None and base.exit_code == 0 and \
                run.seconds >= NATURAL_END_FRACTION * base.seconds:
            return _skip("train-sigterm", f"inconclusive: exited 0 {_s(run.seconds)} after the "
                                          "start, about when the unsignalled run ended "
                                          f"({_s(base.seconds)}), so it may just have finished; "
                                          "give a longer job (--job) to tell", run.seconds)
        return _pass("train-sigterm", f"SIGTERM at {_s(run.signalled_at)} ended the container "
                                      f"{_s(after_signal)} later with exit status "
                                      f"{run.exit_code}", run.seconds)

    # -- serving ---------------------------------------------------------------------------
    def _stage_model_data(self) -> Path | None:
        """--model-data as a directory, staged before anything runs (a bad archive is bad
        input, not a failed check)."""
        if self.options.model_data is None:
            return None
        from local_mode.endpoints.staging import StagingError, stage_model_data

        text = str(self.options.model_data)
        url = text if "://" in text else Path(text).resolve().as_uri()
        try:
            return stage_model_data(url, self.scratch / "model", self.settings.environ)
        except StagingError as exc:
            raise CheckInputError(f"--model-data {text}: {exc}") from None

    def _model_dir(self) -> tuple[Path | None, str]:
        """The directory to mount at /opt/ml/model, or None and why there is none."""
        if self.staged_model is not None:
            return self.staged_model, f"--model-data {self.options.model_data}"
        if self.baseline_model is None:
            return None, "no model to serve: the train run left none and no --model-data was given"
        return self.baseline_model, "the train run's model"

    def _serve_checks(self, names: Sequence[str]) -> list[CheckResult]:
        from local_mode.check.containers import ServingRunner

        model_dir, why = self._model_dir()
        if model_dir is None:
            return [_skip(n, why) for n in names]
        runner = ServingRunner(self.client, secrets.token_hex(4), self.scratch)
        try:
            return _ServeChecks(self, runner, model_dir, names).run()
        finally:
            runner.close()


class _ServeChecks:
    """The serving checks, against one container started once."""

    def __init__(self, session: _Session, runner: Any, model_dir: Path,
                 names: Sequence[str]) -> None:
        self.session = session
        self.options = session.options
        self.runner = runner
        self.model_dir = model_dir
        self.names = names
        self.container: Any = None
        self.port = 0
        self.ready_after: float | None = None
        self.sample: tuple[bytes, dict[str, str]] | None = None
        if self.options.sample is not None:
            headers = {"Content-Type": str(self.options.content_type)}
            if self.options.accept:
                headers["Accept"] = self.options.accept
            self.sample = (Path(self.options.sample).read_bytes(), headers)

    def run(self) -> list[CheckResult]:
        o = self.options
        began = time.monotonic()
        self.container, started = self.runner.start(self.session.image, self.model_dir,
                                                     o.environment)
        self.port = self.container.port
        ping = self._check_ping(started)
        waited = time.monotonic() - began
        results: dict[str, CheckResult] = {"ping": ping, "startup-time": self._judge_startup()}
        results["ping"] = _timed(ping, waited)
        ready = self.ready_after is not None
        for name, check in (("invocations", self._check_invocations),
                            ("errors", self._check_errors),
                            ("serve-sigterm", self._check_drain)):
            if name not in self.names:
                continue
            if not ready:
                results[name] = _skip(name, "the server never answered 200 on /ping (see ping)")
                continue
            started_at = time.monotonic()
            results[name] = _timed(check(), time.monotonic() - started_at)
        return [results[n] for n in self.names]

    def _alive(self) -> bool:
        return bool(self.container.alive())

    def _exit_note(self) -> str:
        code = self.runner.wait_exit(self.container, 0.5)
        status = f"exited {code}" if code is not None else "stopped"
        return f"the container {status}{_log(self.container.log_tail(LOG_TAIL_LINES))}"

    def _check_ping(self, started: float) -> CheckResult:
        limit = max(self.options.ready_timeout, self.options.startup_timeout)
        last = "no answer yet"
        while True:
            try:
                answer = request(LOOPBACK, self.port, "GET", "/ping", timeout=PING_TIMEOUT)
                if answer.status == 200:
                    self.ready_after = time.monotonic() - started
                    break
                last = f"answered {answer.describe()}"
            except NoAnswer as exc:
                last = str(exc)
            if not self._alive():
                return _fail("ping", f"/ping never answered 200 (last: {last}); "
                                     + self._exit_note())
            if time.monotonic() - started > limit:
                return _fail("ping", f"/ping did not answer 200 within {_s(limit)} (last: "
                                     f"{last})" + _log(self.container.log_tail(LOG_TAIL_LINES)))
            time.sleep(PING_INTERVAL)
        for _ in range(PINGS_AFTER_READY):
            try:
                answer = request(LOOPBACK, self.port, "GET", "/ping", timeout=PING_TIMEOUT)
            except NoAnswer as exc:
                return _fail("ping", f"/ping answered 200 once after {_s(self.ready_after)}, "
                                     f"then: {exc}")
            if answer.status != 200:
                return _fail("ping", f"/ping answered 200 once after {_s(self.ready_after)}, "
                                     f"then {answer.describe()}")
        return _pass("ping", f"200 after {_s(self.ready_after)}, and on "
                             f"{PINGS_AFTER_READY} more pings (each within "
                             f"{_s(PING_TIMEOUT)})")

    def _judge_startup(self) -> CheckResult:
        budget = self.options.startup_timeout
        if self.ready_after is None:
            return _fail("startup-time", f"no 200 on /ping within the {_s(budget)} start-up "
                                         "budget (see ping)")
        if self.ready_after > budget:
            return _fail("startup-time", f"ready {_s(self.ready_after)} after docker run, over "
                                         f"the {_s(budget)} budget (--startup-timeout)")
        return _pass("startup-time", f"ready {_s(self.ready_after)} after docker run (budget "
                                     f"{_s(budget)})", self.ready_after)

    def _post(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        return request(LOOPBACK, self.port, "POST", "/invocations", body, headers,
                       timeout=INVOKE_TIMEOUT)

    def _check_invocations(self) -> CheckResult:
        if self.sample is None:
            return _skip("invocations", "no --sample given: what this image accepts is "
                                        "unknown")
        body, headers = self.sample
        try:
            answer = self._post(body, headers)
        except NoAnswer as exc:
            return _fail("invocations", f"no answer to the sample: {exc}" + self._maybe_exit())
        if answer.status != 200:
            return _fail("invocations", f"the sample ({headers['Content-Type']}) was answered "
                                        f"{answer.describe()}")
        return _pass("invocations", f"200 in {_s(answer.seconds)}: {len(answer.body)} bytes of "
                                    f"{answer.content_type or 'no Content-Type'}")

    def _maybe_exit(self) -> str:
        return "; " + self._exit_note() if not self._alive() else ""

    def _check_errors(self) -> CheckResult:
        problems: list[str] = []
        notes: list[str] = []
        body = self.sample[0] if self.sample else b"1,2,3\n"
        accept = {"Accept": self.options.accept} if self.options.accept else {}
        try:
            answer = self._post(body, {"Content-Type": UNSUPPORTED_TYPE, **accept})
            if answer.status == 415:
                notes.append("unsupported Content-Type: 415")
            elif 400 <= answer.status < 500:
                notes.append(f"unsupported Content-Type: {answer.status} (415 is the usual)")
            else:
                problems.append(f"an unsupported Content-Type ({UNSUPPORTED_TYPE}) was answered "
                                f"{answer.describe()}, not 4xx (415)")
        except NoAnswer as exc:
            problems.append(f"an unsupported Content-Type got no answer: {exc}")
        garbage_type = self.options.content_type or DEFAULT_PROBE[1]
        try:
            answer = self._post(GARBAGE, {"Content-Type": garbage_type, **accept})
            problem = _garbage_problem(answer)
            if problem:
                problems.append(f"a garbage {garbage_type} body was answered {problem}")
            else:
                notes.append(f"garbage body: {answer.status}")
        except NoAnswer as exc:
            problems.append(f"a garbage {garbage_type} body got no answer: {exc}")
        problems.extend(self._still_serving())
        if problems:
            return _fail("errors", "; ".join(problems) + self._maybe_exit())
        return _pass("errors", "; ".join(notes) + "; still serving afterwards")

    def _still_serving(self) -> list[str]:
        try:
            ping = request(LOOPBACK, self.port, "GET", "/ping", timeout=PING_TIMEOUT)
        except NoAnswer as exc:
            return [f"after the bad requests /ping got no answer: {exc}"]
        if ping.status != 200:
            return [f"after the bad requests /ping answered {ping.describe()}"]
        if self.sample is None:
            return []
        try:
            answer = self._post(*self.sample)
        except NoAnswer as exc:
            return [f"after the bad requests the sample got no answer: {exc}"]
        if answer.status != 200:
            return [f"after the bad requests the sample was answered {answer.describe()}"]
        return []

    def _check_drain(self) -> CheckResult:
        grace = self.options.grace
        body, headers = self.sample or (DEFAULT_PROBE[0], {"Content-Type": DEFAULT_PROBE[1]})
        try:
            before = self._post(body, headers)
        except NoAnswer as exc:
            return _fail("serve-sigterm", f"the request to hold in flight got no answer even "
                                          f"before SIGTERM: {exc}")
        try:
            # the answer must come within the grace: the service SIGKILLs the container then
            pending = InFlight(LOOPBACK, self.port, "/invocations", body, headers,
                               timeout=grace)
        except NoAnswer as exc:
            return _fail("serve-sigterm", f"could not open the in-flight request: {exc}")
        time.sleep(IN_FLIGHT_SETTLE)
        self.runner.signal(self.container, "SIGTERM")
        signalled = time.monotonic()
        time.sleep(DRAIN_DELAY)
        try:
            answer: Answer | None = pending.finish()
            lost = ""
        except NoAnswer as exc:
            answer, lost = None, str(exc)
        code = self.runner.wait_exit(self.container, grace - (time.monotonic() - signalled))
        exited_after = time.monotonic() - signalled
        problems = []
        if answer is None:
            problems.append(f"the request in flight when SIGTERM arrived was dropped ({lost})")
        elif answer.status != before.status:
            problems.append(f"the request in flight when SIGTERM arrived was answered "
                            f"{answer.describe()}, where the same request got {before.status} "
                            "before")
        if code is None:
            problems.append(f"the container still ran {_s(grace)} after SIGTERM (the service "
                            "would SIGKILL it)")
        elif code == SIGKILL_EXIT:
            problems.append(f"the container exited {SIGKILL_EXIT} (SIGKILL)")
        if problems:
            return _fail("serve-sigterm", "; ".join(problems) +
                         _log(self.container.log_tail(LOG_TAIL_LINES)))
        assert answer is not None
        return _pass("serve-sigterm", f"the request in flight at SIGTERM was answered "
                                      f"{answer.status}, as before; the container exited {code} "
                                      f"{_s(exited_after)} after SIGTERM (grace {_s(grace)})")


LOG_TAIL_LINES = 6


def _garbage_problem(answer: Answer) -> str | None:
    """What is wrong with the answer to a garbage body (None: acceptable)."""
    if answer.status < 500:
        return None  # 4xx is right; a 2xx means the payload was somehow acceptable
    media = answer.content_type.split(";")[0].strip().lower()
    if media in ERROR_BODY_TYPES and answer.body.strip():
        return None
    return f"{answer.describe()}: a 5xx without a JSON or text error body"


def _result(name: str, status: Status, reason: str, seconds: float | None) -> CheckResult:
    return CheckResult(name, TITLES[name], status, reason, seconds)


def _pass(name: str, reason: str, seconds: float | None = None) -> CheckResult:
    return _result(name, Status.PASS, reason, seconds)


def _fail(name: str, reason: str, seconds: float | None = None) -> CheckResult:
    return _result(name, Status.FAIL, reason, seconds)


def _skip(name: str, reason: str, seconds: float | None = None) -> CheckResult:
    return _result(name, Status.SKIP, reason, seconds)


def _timed(result: CheckResult, seconds: float) -> CheckResult:
    if result.seconds is not None:
        return result
    return CheckResult(result.name, result.title, result.status, result.reason, seconds)


def _s(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.1f} s"


def _one_line(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return repr(flat[:limit] + ("..." if len(flat) > limit else ""))


def _files(names: Sequence[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{len(names)} file{'s' if len(names) != 1 else ''} ({shown})"


def _log(tail: str, lines: int = LOG_TAIL_LINES) -> str:
    kept = [line for line in tail.splitlines() if line.strip()][-lines:]
    return f"; last output: {' | '.join(kept)}" if kept else ""

