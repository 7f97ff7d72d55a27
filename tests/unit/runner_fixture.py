"""A runner for tests of :mod:`local_mode.runners`: what a real runner does around its work,
with no work but waiting for a stop and recording it."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from local_mode.runners import Lifecycle, runner_main

FIXTURE = Lifecycle("transform-jobs", "tests.unit.runner_fixture", "TransformJobStatus",
                    frozenset({"InProgress", "Stopping"}), "fixture")


def main(argv: Sequence[str] | None = None) -> int:
    with runner_main(FIXTURE, argv) as context:
        context.resource.work_dir.mkdir()
        (context.resource.work_dir / "scratch").write_text("x")
        context.stop.wait(60)
        context.resource.update(lambda d: d.update(TransformJobStatus="Stopped",
                                                   Backend=context.backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
