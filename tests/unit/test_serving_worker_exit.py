"""``exit_without_teardown``: a worker's fast exit keeps what a normal exit does that matters."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


def test_runs_atexit_handlers_flushes_streams_and_exits_0() -> None:
    done = _run("""
        import atexit, logging, sys
        from toolkit.serving.worker import exit_without_teardown
        atexit.register(lambda: sys.stderr.write("handler ran\\n"))
        sys.stdout.write("buffered, no newline")
        exit_without_teardown()
        print("not reached")
    """)
    assert done.returncode == 0
    assert done.stdout == "buffered, no newline"
    assert done.stderr == "handler ran\n"


def test_returns_while_a_user_thread_runs_so_the_normal_exit_waits_for_it() -> None:
    done = _run("""
        import threading, time
        from toolkit.serving.worker import exit_without_teardown
        finish = threading.Event()
        def work():
            finish.wait()
            time.sleep(0.2)
            print("thread finished")
        threading.Thread(target=work).start()
        exit_without_teardown()
        print("returned")
        finish.set()
    """)
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["returned", "thread finished"]


def test_daemon_threads_do_not_hold_it_back() -> None:
    done = _run("""
        import threading
        from toolkit.serving.worker import exit_without_teardown
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        exit_without_teardown()
        print("not reached")
    """)
    assert done.returncode == 0
    assert done.stdout == ""


def test_c_stdio_buffers_are_flushed_and_before_runs_first() -> None:
    done = _run("""
        import ctypes, sys
        from toolkit.serving.worker import exit_without_teardown
        libc = ctypes.CDLL(None)
        libc.printf(b"from C stdio, buffered\\n")  # a pipe: fully buffered by libc
        exit_without_teardown(before=lambda: sys.stderr.write("before\\n"))
    """)
    assert done.returncode == 0
    assert done.stdout == "from C stdio, buffered\n"
    assert done.stderr == "before\n"


def test_before_is_not_called_when_it_returns() -> None:
    done = _run("""
        import threading
        from toolkit.serving.worker import exit_without_teardown
        gate = threading.Event()
        threading.Thread(target=gate.wait).start()
        exit_without_teardown(before=lambda: print("before"))
        print("returned")
        gate.set()
    """)
    assert done.stdout == "returned\n"
