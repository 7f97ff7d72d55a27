"""toolkit.training.failure: the failure reason in /opt/ml/output/failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from toolkit.training.failure import (
    OOM_HINT,
    SHOWN_CHARS,
    FailureFile,
    describe_exit,
    summarize_stderr,
    user_failure_message,
)

# -- real tracebacks -------------------------------------------------------------------------

PROGRAMS = {
    "chained": """
        def load():
            raise KeyError("epochs")
        try:
            load()
        except KeyError as exc:
            raise ValueError("bad hyperparameters") from exc
    """,
    "during_handling": """
        try:
            1 / 0
        except ZeroDivisionError:
            raise RuntimeError("while recovering")
    """,
    "system_exit_message": """
        raise SystemExit("config invalid: lr must be > 0")
    """,
    "system_exit_code": """
        import sys
        sys.exit(3)
    """,
    "keyboard_interrupt": """
        raise KeyboardInterrupt
    """,
    "dotted_custom": """
        import mypkg.errors
        raise mypkg.errors.DataError("bad row 3")
    """,
    "dotted_custom_no_suffix": """
        import mypkg.errors
        raise mypkg.errors.Diverged("loss is nan")
    """,
    "logs_after_traceback": """
        import atexit, sys
        atexit.register(lambda: print("INFO flushed 3 checkpoints", file=sys.stderr))
        raise MemoryError("cannot allocate 4 GiB")
    """,
    "warning_then_error": """
        import warnings
        warnings.warn("old api")
        raise TypeError("expected str")
    """,
    "exception_group": """
        raise ExceptionGroup("2 workers failed", [ValueError("shard 1"), OSError("shard 2")])
    """,
}


@pytest.fixture(scope="module")
def stderr_of(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run each program once with this interpreter and keep its stderr."""
    work = tmp_path_factory.mktemp("programs")
    (work / "mypkg").mkdir()
    (work / "mypkg" / "__init__.py").write_text("")
    (work / "mypkg" / "errors.py").write_text(
        "class DataError(Exception):\n    pass\n\n\nclass Diverged(Exception):\n    pass\n")
    out = {}
    for name, source in PROGRAMS.items():
        script = work / f"{name}.py"
        script.write_text(textwrap.dedent(source))
        proc = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True,
                              text=True, check=False, timeout=60)
        assert proc.returncode != 0, name
        out[name] = proc.stderr
    return out


@pytest.mark.parametrize(("program", "summary"), [
    ("chained", "ValueError: bad hyperparameters"),
    ("during_handling", "RuntimeError: while recovering"),
    ("system_exit_message", "config invalid: lr must be > 0"),
    ("keyboard_interrupt", "KeyboardInterrupt"),
    ("dotted_custom", "mypkg.errors.DataError: bad row 3"),
    ("dotted_custom_no_suffix", "mypkg.errors.Diverged: loss is nan"),
    ("logs_after_traceback", "MemoryError: cannot allocate 4 GiB"),
    ("warning_then_error", "TypeError: expected str"),
])
def test_summary_of_real_tracebacks(stderr_of: dict[str, str], program: str,
                                    summary: str) -> None:
    assert summarize_stderr(stderr_of[program]) == summary


def test_system_exit_with_a_code_prints_nothing(stderr_of: dict[str, str]) -> None:
    assert stderr_of["system_exit_code"] == ""
    assert summarize_stderr(stderr_of["system_exit_code"]) is None


def test_exception_group_summary_names_the_group(stderr_of: dict[str, str]) -> None:
    # Python 3.11 prints groups with "  | " / "+-" box prefixes; the summary must be the
    # exception line, not the closing "+-----" rule.
    summary = summarize_stderr(stderr_of["exception_group"])
    assert summary is not None
    assert "2 workers failed" in summary or "shard" in summary


def test_summary_of_non_python_output() -> None:
    assert summarize_stderr("loading...\nfatal: disk full\n\n   \n") == "fatal: disk full"
    assert summarize_stderr("terminate called after throwing 'std::bad_alloc'\n  what():  "
                            "std::bad_alloc\n") == "what():  std::bad_alloc"
    assert summarize_stderr("") is None
    assert summarize_stderr("\n \n\t\n") is None


def test_summary_prefers_the_last_exception_line() -> None:
    tail = "ValueError: first\nlater output\nOSError: [Errno 28] No space left\nbye\n"
    assert summarize_stderr(tail) == "OSError: [Errno 28] No space left"


def test_summary_ignores_log_lines_that_merely_mention_errors() -> None:
    tail = "epoch 3 Error rate: 0.1\n/app/x.py:3: UserWarning: slow\nRuntimeError: real\n" \
           "step 9 loss: 1.0\n"
    assert summarize_stderr(tail) == "RuntimeError: real"


# -- describe_exit / user_failure_message ----------------------------------------------------

@pytest.mark.parametrize(("code", "text"), [
    (1, "exit code 1"),
    (2, "exit code 2"),
    (128, "exit code 128"),
    (130, "exit code 130 (SIGINT)"),
    (137, "exit code 137 (SIGKILL)"),
    (143, "exit code 143 (SIGTERM)"),
])
def test_describe_exit(code: int, text: str) -> None:
    assert describe_exit(code) == text


def test_exit_statuses_that_are_no_signal_are_not_called_signals() -> None:
    # sys.exit(-1) and exit(255) are common; 255 - 128 = 127 is no signal at all.
    assert describe_exit(255) == "exit code 255"
    assert describe_exit(200) == "exit code 200"


def test_message_first_line_has_exception_and_exit_code(stderr_of: dict[str, str]) -> None:
    command = [sys.executable, "/opt/ml/code/train.py", "--lr", "0.1"]
    message = user_failure_message(returncode=1, command=command,
                                   stderr_tail=stderr_of["chained"])
    first = message.splitlines()[0]
    assert first == "AlgorithmError: exit code 1: ValueError: bad hyperparameters"
    assert f"Command: {sys.executable} /opt/ml/code/train.py --lr 0.1" in message
    assert "Last lines of stderr:" in message
    assert message.endswith(stderr_of["chained"].rstrip("\n") + "\n")
    assert "ValueError: bad hyperparameters" in message[:SHOWN_CHARS]


def test_message_quotes_the_command_like_a_shell() -> None:
    message = user_failure_message(returncode=2, command=["/bin/x", "a b", "it's"],
                                   stderr_tail="")
    assert "Command: /bin/x 'a b' 'it'\"'\"'s'" in message


def test_message_without_stderr() -> None:
    message = user_failure_message(returncode=3, command=["prog"], stderr_tail="\n")
    assert message == "AlgorithmError: exit code 3\nCommand: prog\n"


def test_exit_137_gets_the_oom_hint() -> None:
    message = user_failure_message(returncode=137, command=["python", "train.py"],
                                   stderr_tail="")
    lines = message.splitlines()
    assert lines[0] == "AlgorithmError: exit code 137 (SIGKILL)"
    assert lines[1] == OOM_HINT
    assert "out-of-memory" in OOM_HINT
    assert len(message[:SHOWN_CHARS]) >= len(lines[0]) + len(OOM_HINT)


def test_stop_forwarded_message() -> None:
    message = user_failure_message(returncode=143, command=["p"], stderr_tail="",
                                   stopped_by=signal.SIGTERM, grace_seconds=110.0)
    assert message.splitlines()[:2] == [
        "AlgorithmError: exit code 143 (SIGTERM)",
        "Stopped: SIGTERM received and forwarded to the program."]


def test_stop_then_killed_after_grace_has_no_oom_hint() -> None:
    message = user_failure_message(returncode=137, command=["p"], stderr_tail="",
                                   stopped_by=signal.SIGTERM, killed_after_grace=True,
                                   grace_seconds=110.0)
    assert "did not exit within the 110 s grace period and was killed" in message
    assert OOM_HINT not in message


def test_killed_after_grace_without_a_grace_value_does_not_crash() -> None:
    message = user_failure_message(returncode=137, command=["p"], stderr_tail="",
                                   stopped_by=signal.SIGINT, killed_after_grace=True)
    assert "SIGINT" in message


def test_long_stderr_keeps_the_summary_within_the_shown_part() -> None:
    tail = "x" * 5000 + "\nValueError: the cause\n"
    message = user_failure_message(returncode=1, command=["p"], stderr_tail=tail)
    assert "ValueError: the cause" in message[:SHOWN_CHARS]


# -- FailureFile -----------------------------------------------------------------------------

def test_prepare_removes_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "output" / "failure"
    path.parent.mkdir()
    path.write_text("old run\n")
    failure = FailureFile.prepare(path)
    assert not path.exists()
    assert failure.written_by_user() is False


def test_prepare_without_a_file_or_directory(tmp_path: Path) -> None:
    failure = FailureFile.prepare(tmp_path / "output" / "failure")
    assert failure.written_by_user() is False
    assert not (tmp_path / "output").exists()


def test_write_creates_the_directory_and_file(tmp_path: Path) -> None:
    path = tmp_path / "output" / "failure"
    failure = FailureFile.prepare(path)
    assert failure.write("AlgorithmError: exit code 1 ✗\n") is True
    assert path.read_text(encoding="utf-8") == "AlgorithmError: exit code 1 ✗\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["failure"]


def test_user_written_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "failure"
    failure = FailureFile.prepare(path)
    path.write_text("my own reason: the data is empty\n")
    assert failure.written_by_user() is True
    assert failure.write("AlgorithmError: exit code 1\n") is False
    assert path.read_text() == "my own reason: the data is empty\n"


def test_empty_user_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "failure"
    failure = FailureFile.prepare(path)
    path.touch()
    inode = path.stat().st_ino
    assert failure.written_by_user() is False
    assert failure.write("reason\n") is True
    assert path.read_text() == "reason\n"
    # Replaced by rename, not truncated in place: a reader never sees a half-written file.
    assert path.stat().st_ino != inode
    assert [p.name for p in tmp_path.iterdir()] == ["failure"]


def test_own_write_is_not_taken_for_the_users(tmp_path: Path) -> None:
    path = tmp_path / "failure"
    failure = FailureFile.prepare(path)
    failure.write("first\n")
    assert failure.written_by_user() is False


def test_temporary_file_is_in_the_same_directory(tmp_path: Path) -> None:
    # os.replace is only atomic within one file system, so the temporary file must sit beside
    # the target; a leftover directory of that name makes the write fail loudly, not silently.
    path = tmp_path / "failure"
    failure = FailureFile.prepare(path)
    (tmp_path / f".failure.{os.getpid()}.tmp").mkdir()
    with pytest.raises(OSError):
        failure.write("reason\n")
    assert not path.exists()
