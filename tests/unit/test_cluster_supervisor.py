"""local_mode.cluster.supervisor: logs, stop requests, a failed host stopping its peers, time
limits, SIGTERM then SIGKILL after the grace period, periodic work. Hosts are real processes
(``sh``), supervised through the process backend's HostRun."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from local_mode.cluster import Host
from local_mode.cluster.process import ProcessHostRun
from local_mode.cluster.supervisor import JobLog, Periodic, Supervisor, out_of_memory_reason
from toolkit.layout import Layout


def _run(tmp_path: Path, name: str, script: str) -> ProcessHostRun:
    process = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    return ProcessHostRun(Host(name, 0, 1, Layout(tmp_path / name)), process)


def _supervisor(tmp_path: Path, grace: float = 5.0) -> Supervisor:
    return Supervisor(JobLog(tmp_path / "logs"), grace)


def test_lines_land_in_both_logs_and_exit_codes_are_returned(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    runs = [_run(tmp_path, "h1", "echo one; echo two"), _run(tmp_path, "h2", "echo three")]
    seen: list[bytes] = []
    pumps = [supervisor.pump(runs[0], seen.append), supervisor.pump(runs[1])]
    assert supervisor.supervise(runs) == {"h1": 0, "h2": 0}
    for pump in pumps:
        pump.join(5)
    assert seen == [b"one\n", b"two\n"]
    assert (tmp_path / "logs" / "h1.log").read_text() == "one\ntwo\n"
    assert sorted((tmp_path / "logs" / "all.log").read_text().splitlines()) == \
        ["h1 | one", "h1 | two", "h2 | three"]
    supervisor.log.line("optml", b"status")
    assert not (tmp_path / "logs" / "optml.log").exists()  # local mode's own lines: all.log


def test_a_failed_host_stops_its_peers_without_a_stop_kind(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    stopping: list[str | None] = []
    runs = [_run(tmp_path, "h1", "exec sleep 30"), _run(tmp_path, "h2", "exit 4")]
    codes = supervisor.supervise(runs, on_stopping=stopping.append)
    assert codes["h2"] == 4 and codes["h1"] != 0
    assert list(codes) == ["h2", "h1"]  # the order they exited in: the cause first
    assert stopping == [None] and supervisor.stop_kind is None


def test_a_timer_stops_the_job_with_its_kind_and_grace_ends_in_sigkill(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path, grace=0.3)
    began = time.monotonic()
    run = _run(tmp_path, "h1", "trap '' TERM; while true; do sleep 0.05; done")
    codes = supervisor.supervise(
        [run], timers=lambda: "MaxRuntimeExceeded" if time.monotonic() - began > 0.2 else None)
    assert supervisor.stop_kind == "MaxRuntimeExceeded"
    assert codes == {"h1": 128 + 9}  # killed by SIGKILL after the grace period
    run.cleanup()


def test_request_stop_keeps_the_first_kind(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    supervisor.request_stop("Stopped")
    supervisor.request_stop("MaxRuntimeExceeded")
    assert supervisor.stop_kind == "Stopped" and supervisor.stop_event.is_set()
    supervisor.reset()
    assert supervisor.stop_kind is None and not supervisor.stop_event.is_set()


def test_periodic_work_runs_while_hosts_run(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    ticks: list[float] = []
    supervisor.supervise([_run(tmp_path, "h1", "sleep 0.5")],
                         periodic=[Periodic(0.1, lambda: ticks.append(time.monotonic()))])
    assert 2 <= len(ticks) <= 6


def test_out_of_memory_reason_names_the_instance_type_only_when_it_is_one() -> None:
    assert "memory of ml.m5.large" in out_of_memory_reason("algo-1", "ml.m5.large")
    assert "memory and was killed" in out_of_memory_reason("algo-1", "local")


def test_failing_periodic_work_is_logged_and_never_ends_the_job(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        raise OSError("the bucket is not reachable")

    assert supervisor.supervise([_run(tmp_path, "h1", "sleep 0.4")],
                                periodic=[Periodic(0.1, flaky)]) == {"h1": 0}
    assert len(calls) >= 2 and supervisor.stop_kind is None
    assert "warning: OSError: the bucket is not reachable" in \
        (tmp_path / "logs" / "all.log").read_text()


def test_reset_forgets_the_hosts_that_ended(tmp_path: Path) -> None:
    """After a spot restart the new hosts are not 'exiting' (the loop would poll every 1 ms)."""
    supervisor = _supervisor(tmp_path)
    run = _run(tmp_path, "h1", "echo x")
    supervisor.pump(run).join(5)
    supervisor.supervise([run])
    assert supervisor._output_ended == {"h1"}
    supervisor.reset()
    assert supervisor._output_ended == set() and not supervisor._wake.is_set()


def test_a_job_log_is_readable_line_by_line_and_reopens_after_close(tmp_path: Path) -> None:
    """The files stay open for the job (one open per file, not per line) yet every line is
    on disk as soon as it is written, with its time beside it, and a line after close()
    is appended, not lost."""
    from local_mode.log_times import read_times_from

    log = JobLog(tmp_path / "logs")
    log.line("algo-1", b"one")
    log.line("optml", b"status\n")
    assert (tmp_path / "logs" / "all.log").read_bytes() == b"algo-1 | one\noptml | status\n"
    assert (tmp_path / "logs" / "algo-1.log").read_bytes() == b"one\n"
    assert sorted(read_times_from(tmp_path / "logs" / "all.log")[0]) == [0, 13]
    log.close()
    log.line("algo-1", b"two")
    log.close()
    assert (tmp_path / "logs" / "algo-1.log").read_bytes() == b"one\ntwo\n"


def test_host_lines_are_flushed_soon_in_order_and_the_flusher_ends_with_close(
        tmp_path: Path) -> None:
    """A host's output (``at_once=False``) reaches the disk within the flush interval with no
    later write to push it, at once on flush(), in all.log's order with its offsets in the
    times sidecar; close() ends the flusher thread."""
    import threading

    from local_mode.cluster.supervisor import FLUSH_INTERVAL
    from local_mode.log_times import read_times_from

    logs = tmp_path / "logs"
    log = JobLog(logs)
    before = set(threading.enumerate())
    log.line("algo-1", b"one", at_once=False)
    flushers = [t for t in set(threading.enumerate()) - before if t.name == "job-log-flush"]
    assert len(flushers) == 1
    deadline = time.monotonic() + 5
    while not (logs / "algo-1.log").exists() or (logs / "algo-1.log").read_bytes() != b"one\n":
        assert time.monotonic() < deadline, "a buffered line never reached the disk"
        time.sleep(FLUSH_INTERVAL / 5)
    log.line("algo-1", b"two", at_once=False)
    log.line("optml", b"status", at_once=False)
    log.flush()
    assert (logs / "algo-1.log").read_bytes() == b"one\ntwo\n"
    assert (logs / "all.log").read_bytes() == b"algo-1 | one\nalgo-1 | two\noptml | status\n"
    assert sorted(read_times_from(logs / "all.log")[0]) == [0, 13, 26]
    log.close()
    deadline = time.monotonic() + 5
    while flushers[0].is_alive():
        assert time.monotonic() < deadline, "the flusher outlived close()"
        time.sleep(FLUSH_INTERVAL / 5)
