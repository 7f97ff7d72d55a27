"""Find a framework's model file in the model directory (used by the images' default handlers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from toolkit.errors import ConfigError


def find_model_file(model_dir: str | Path, names: Sequence[str]) -> Path:
    """The first of ``names`` in ``model_dir``; a clear error listing what *is* there otherwise."""
    directory = Path(model_dir)
    for name in names:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    raise ConfigError(str(directory), f"no model file: expected one of {', '.join(names)}; "
                      f"found {present or 'nothing'} (write your own model_fn for other names)")
