"""Shell completion as a shell asks for it (click's protocol, real ``optml`` processes): command
names, and the names of local resources read from the state directory on the command line or
the default one (docs/local-mode.md, "Shell completion")."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from local_mode.state import StateStore

OPTML = [sys.executable, "-c", "import sys; from toolkit.cli import main; sys.argv[0] = 'optml'; "
         "main()"]


def complete(words: str, **env: str) -> list[str]:
    """What bash completion offers after ``words`` (the last word being completed)."""
    parts = words.split(" ")
    run = subprocess.run(OPTML, capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "_OPTML_COMPLETE": "bash_complete",
                              "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1), **env})
    return [line.split(",", 1)[1] for line in run.stdout.splitlines() if line]


def _state(tmp_path: Path) -> Path:
    store = StateStore(tmp_path / "state")
    for name in ("serving-a", "serving-b"):
        store.create("endpoints", name, {"EndpointName": name, "EndpointStatus": "Failed",
                                         "CreationTime": datetime.now(timezone.utc)}, {})
    store.create("training-jobs", "fit-1", {"TrainingJobName": "fit-1",
                                            "TrainingJobStatus": "Completed",
                                            "CreationTime": datetime.now(timezone.utc)}, {})
    return store.root


def test_commands_complete() -> None:
    assert {"endpoints", "endpoint-configs"} <= set(complete("optml local endp"))
    assert "prune" in complete("optml local pr")
    assert {"describe", "logs", "rm", "wait"} <= set(complete("optml local endpoints "))


def test_resource_names_complete_from_the_state_directory(tmp_path: Path) -> None:
    state = str(_state(tmp_path))
    assert complete("optml local endpoints describe --state-dir " + state + " serv") == [
        "serving-a", "serving-b"]
    assert complete("optml local endpoints --state-dir " + state + " rm serving-") == [
        "serving-a", "serving-b"]  # given to the group: the subcommand's too
    assert complete("optml local describe ", OPTML_LOCAL_STATE_DIR=state) == ["fit-1"]
    assert complete("optml local invoke serving-b", OPTML_LOCAL_STATE_DIR=state) == [
        "serving-b"]
    # a state directory that does not exist offers nothing, and fails nothing
    assert complete("optml local endpoints rm ",
                    OPTML_LOCAL_STATE_DIR=str(tmp_path / "none")) == []
