"""``local_mode.client(...)`` stays the factory however often it is called (a submodule of the
same name once shadowed it after the first call)."""

from __future__ import annotations

from pathlib import Path

import pytest

import local_mode


def test_factory_survives_repeated_calls(tmp_path: Path) -> None:
    first = local_mode.client("sagemaker", state_dir=tmp_path, backend="process")
    second = local_mode.client("sagemaker-runtime", state_dir=tmp_path)
    third = local_mode.client("sagemaker", state_dir=tmp_path, backend="process")
    assert type(first).__name__ == type(third).__name__ == "SageMakerClient"
    assert type(second).__name__ == "RuntimeClient"
    second.close()


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="sagemaker-runtime"):
        local_mode.client("s3")
