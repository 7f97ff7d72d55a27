"""The checks ``optml check`` knows, by name, in the order they run.

Apart from everything else so the command line can offer them (``--only``, ``--help``) without
loading the checks, which bring in Docker and the training backends: ``optml`` imports the
command on every invocation, including ``optml train`` inside each container.
"""

from __future__ import annotations

TRAIN_CHECKS = ("train", "failure-file", "train-sigterm")
SERVE_CHECKS = ("ping", "startup-time", "invocations", "errors", "serve-sigterm")
ALL_CHECKS = TRAIN_CHECKS + SERVE_CHECKS

__all__ = ["ALL_CHECKS", "SERVE_CHECKS", "TRAIN_CHECKS"]
