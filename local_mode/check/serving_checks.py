"""The serving checks (ping, startup-time, invocations, errors, serve-sigterm), against one
``serve`` container started once: start-up is measured on the same container the other checks
then use, and the drain check goes last because it ends the container."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from local_mode.check.containers import SIGKILL_EXIT, ServingRunner
from local_mode.check.errors import CheckInputError
from local_mode.check.options import CheckOptions
from local_mode.check.probes import Answer, InFlight, NoAnswer, request
from local_mode.check.report import CheckResult
from local_mode.check.verdicts import (
    LOG_TAIL_LINES,
    fail_result,
    log_excerpt,
    pass_result,
    secs,
    skip_result,
    with_time,
)
from local_mode.endpoints.backends.docker import DockerStartFailed
from local_mode.endpoints.health import load_failure

PING_TIMEOUT = 2.0
"""The service gives each /ping 2 s."""
INVOKE_TIMEOUT = 60.0
"""The service gives each /invocations 60 s."""
PING_INTERVAL = 0.1
PINGS_AFTER_READY = 3
IN_FLIGHT_SETTLE = 0.2
"""Between sending the in-flight request's first part and SIGTERM: the server reads it."""
DRAIN_DELAY = 0.5
"""Between SIGTERM and the last byte: the server is shutting down when the request completes."""
UNSUPPORTED_TYPE = "application/x-optml-check-unsupported"
GARBAGE = b"\x00\xff\xfe{[ not a valid payload ,,\x80"
DEFAULT_PROBE = (b"{}", "application/json")
"""What the drain check sends when no sample was given."""
ERROR_BODY_TYPES = ("application/json", "text/plain", "application/problem+json")


def read_sample(path: Path) -> bytes:
    """The ``--sample`` body; CheckInputError naming the file when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckInputError(f"--sample {path}: {exc.strerror or exc}") from None


class ServingChecks:
    """The serving checks, against one container started once."""

    def __init__(self, image: str, options: CheckOptions, runner: ServingRunner,
                 model_dir: Path, names: Sequence[str]) -> None:
        self.image = image
        self.options = options
        self.runner = runner
        self.model_dir = model_dir
        self.names = names
        self.container: Any = None
        self.host, self.port = "", 0
        self.ready_after: float | None = None
        self.sample: tuple[bytes, dict[str, str]] | None = None
        if self.options.sample is not None:
            headers = {"Content-Type": str(self.options.content_type)}
            if self.options.accept:
                headers["Accept"] = self.options.accept
            self.sample = (read_sample(Path(self.options.sample)), headers)

    def run(self) -> list[CheckResult]:
        o = self.options
        began = time.monotonic()
        try:
            self.container, started = self.runner.start(self.image, self.model_dir,
                                                         o.environment)
        except DockerStartFailed as exc:
            return self._not_started(str(exc))
        self.host, self.port = self.container.host, self.container.port
        ping = self._check_ping(started)
        waited = time.monotonic() - began
        results: dict[str, CheckResult] = {"ping": with_time(ping, waited),
                                           "startup-time": self._judge_startup()}
        ready = self.ready_after is not None
        for name, check in (("invocations", self._check_invocations),
                            ("errors", self._check_errors),
                            ("serve-sigterm", self._check_drain)):
            if name not in self.names:
                continue
            if not ready:
                reason = "the server never answered 200 on /ping (see ping)"
                results[name] = skip_result(name, reason)
                continue
            started_at = time.monotonic()
            results[name] = with_time(check(), time.monotonic() - started_at)
        return [results[n] for n in self.names]

    def _not_started(self, why: str) -> list[CheckResult]:
        """``serve`` could not even start: ping and startup-time fail, the rest had no server."""
        results = []
        for name in self.names:
            if name in ("ping", "startup-time"):
                results.append(fail_result(name, f"the container did not start: {why}"))
            else:
                results.append(skip_result(name, "the server never started (see ping)"))
        return results

    def _alive(self) -> bool:
        return bool(self.container.alive())

    def _exit_note(self) -> str:
        code = self.runner.wait_exit(self.container, 0.5)
        status = f"exited {code}" if code is not None else "stopped"
        return f"the container {status}{log_excerpt(self.container.log_tail(LOG_TAIL_LINES))}"

    def _check_ping(self, started: float) -> CheckResult:
        limit = max(self.options.ready_timeout, self.options.startup_timeout)
        last = "no answer yet"
        while True:
            try:
                answer = request(self.host, self.port, "GET", "/ping", timeout=PING_TIMEOUT)
                if answer.status == 200:
                    self.ready_after = time.monotonic() - started
                    break
                fatal = load_failure(answer.status, answer.body)
                if fatal is not None:  # it says so itself: no use waiting out the timeout
                    return fail_result("ping", f"the model cannot load: {fatal}")
                last = f"answered {answer.describe()}"
            except NoAnswer as exc:
                last = str(exc)
            if not self._alive():
                reason = f"/ping never answered 200 (last: {last}); {self._exit_note()}"
                return fail_result("ping", reason)
            if time.monotonic() - started > limit:
                reason = (f"/ping did not answer 200 within {secs(limit)} (last: {last})"
                          f"{log_excerpt(self.container.log_tail(LOG_TAIL_LINES))}")
                return fail_result("ping", reason)
            time.sleep(PING_INTERVAL)
        for _ in range(PINGS_AFTER_READY):
            try:
                answer = request(self.host, self.port, "GET", "/ping", timeout=PING_TIMEOUT)
            except NoAnswer as exc:
                reason = f"/ping answered 200 once after {secs(self.ready_after)}, then: {exc}"
                return fail_result("ping", reason)
            if answer.status != 200:
                reason = (f"/ping answered 200 once after {secs(self.ready_after)}, then "
                          f"{answer.describe()}")
                return fail_result("ping", reason)
        reason = (f"200 after {secs(self.ready_after)}, and on {PINGS_AFTER_READY} more pings "
                  f"(each within {secs(PING_TIMEOUT)})")
        return pass_result("ping", reason)

    def _judge_startup(self) -> CheckResult:
        budget = self.options.startup_timeout
        if self.ready_after is None:
            reason = f"no 200 on /ping within the {secs(budget)} start-up budget (see ping)"
            return fail_result("startup-time", reason)
        if self.ready_after > budget:
            reason = (f"ready {secs(self.ready_after)} after docker run, over the {secs(budget)} "
                      "budget (--startup-timeout)")
            return fail_result("startup-time", reason)
        reason = f"ready {secs(self.ready_after)} after docker run (budget {secs(budget)})"
        return pass_result("startup-time", reason, self.ready_after)

    def _post(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        return request(self.host, self.port, "POST", "/invocations", body, headers,
                       timeout=INVOKE_TIMEOUT)

    def _check_invocations(self) -> CheckResult:
        if self.sample is None:
            return skip_result("invocations", "no --sample given: what this image accepts is "
                                              "unknown")
        body, headers = self.sample
        try:
            answer = self._post(body, headers)
        except NoAnswer as exc:
            reason = f"no answer to the sample: {exc}{self._maybe_exit()}"
            return fail_result("invocations", reason)
        if answer.status != 200:
            reason = f"the sample ({headers['Content-Type']}) was answered {answer.describe()}"
            return fail_result("invocations", reason)
        reason = (f"200 in {secs(answer.seconds)}: {len(answer.body)} bytes of "
                  f"{answer.content_type or 'no Content-Type'}")
        return pass_result("invocations", reason)

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
            problem = garbage_problem(answer)
            if problem:
                problems.append(f"a garbage {garbage_type} body was answered {problem}")
            else:
                notes.append(f"garbage body: {answer.status}")
        except NoAnswer as exc:
            problems.append(f"a garbage {garbage_type} body got no answer: {exc}")
        problems.extend(self._still_serving())
        if problems:
            return fail_result("errors", "; ".join(problems) + self._maybe_exit())
        return pass_result("errors", "; ".join(notes) + "; still serving afterwards")

    def _still_serving(self) -> list[str]:
        try:
            ping = request(self.host, self.port, "GET", "/ping", timeout=PING_TIMEOUT)
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
            reason = f"the request to hold in flight got no answer even before SIGTERM: {exc}"
            return fail_result("serve-sigterm", reason)
        try:
            # the answer must come within the grace: the service SIGKILLs the container then
            pending = InFlight(self.host, self.port, "/invocations", body, headers,
                               timeout=grace)
        except NoAnswer as exc:
            return fail_result("serve-sigterm", f"could not open the in-flight request: {exc}")
        try:
            time.sleep(IN_FLIGHT_SETTLE)
            self.runner.signal(self.container, "SIGTERM")
        except BaseException:
            pending.abandon()  # never leave the held connection open
            raise
        signalled = time.monotonic()
        time.sleep(DRAIN_DELAY)
        try:
            answer: Answer | None = pending.finish()  # closes the connection
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
            problems.append(f"the container still ran {secs(grace)} after SIGTERM (the service "
                            "would SIGKILL it)")
        elif code == SIGKILL_EXIT:
            problems.append(f"the container exited {SIGKILL_EXIT} (SIGKILL)")
        if problems:
            reason = "; ".join(problems) + log_excerpt(self.container.log_tail(LOG_TAIL_LINES))
            return fail_result("serve-sigterm", reason)
        assert answer is not None
        reason = (f"the request in flight at SIGTERM was answered {answer.status}, as before; "
                  f"the container exited {code} {secs(exited_after)} after SIGTERM "
                  f"(grace {secs(grace)})")
        return pass_result("serve-sigterm", reason)


def garbage_problem(answer: Answer) -> str | None:
    """What is wrong with the answer to a garbage body (None: acceptable)."""
    if answer.status < 500:
        return None  # 4xx is right; a 2xx means the payload was somehow acceptable
    media = answer.content_type.split(";")[0].strip().lower()
    if media in ERROR_BODY_TYPES and answer.body.strip():
        return None
    return f"{answer.describe()}: a 5xx without a JSON or text error body"
