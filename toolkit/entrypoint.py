"""The exec-form ENTRYPOINT of optml images: ``optml entrypoint train|serve|COMMAND...``.

The platform runs ``docker run IMAGE train`` (or ``serve``); people also run ``docker run IMAGE
python -c ...``. As PID 1 this process must forward signals and reap zombies itself (which
rules out tini), so anything that is not ``train`` or ``serve`` runs as a supervised child.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence

#: A command that is not train/serve gets this long to exit after SIGTERM (docker's own default
#: stop timeout is 10 s; the platform's is 120 s).
DEFAULT_COMMAND_GRACE = 100.0


def main(argv: Sequence[str]) -> int:
    if not argv:
        print("usage: optml entrypoint train|serve|COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command, *rest = argv
    if command == "train":
        from toolkit.training.main import main as train_main

        return train_main(rest)
    if command == "serve":
        from toolkit.serving.server import main as serve_main

        return serve_main(rest)
    # here, not at the top: `serve` and `train` start faster without the supervisor's imports
    from toolkit.training.process import run_supervised

    if shutil.which(command) is None and os.sep not in command:
        print(f"optml entrypoint: {command}: command not found", file=sys.stderr)
        return 127
    try:
        result = run_supervised(list(argv), env=os.environ, grace_seconds=DEFAULT_COMMAND_GRACE,
                                stderr_sink=sys.stderr.buffer)
    except PermissionError as exc:
        print(f"optml entrypoint: {command}: {exc.strerror}", file=sys.stderr)
        return 126
    except FileNotFoundError:
        print(f"optml entrypoint: {command}: command not found", file=sys.stderr)
        return 127
    return result.returncode
