"""toolkit.layout: every /opt/ml path, relative to a relocatable root, computed without I/O."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.layout import DEFAULT_ROOT, Layout

#: Every path property and where the contract puts it, relative to the root.
EXPECTED = {
    "input_dir": "input",
    "input_config_dir": "input/config",
    "hyperparameters_file": "input/config/hyperparameters.json",
    "input_data_config_file": "input/config/inputdataconfig.json",
    "resource_config_file": "input/config/resourceconfig.json",
    "checkpoint_config_file": "input/config/checkpointconfig.json",
    "input_data_dir": "input/data",
    "code_dir": "code",
    "model_dir": "model",
    "model_code_dir": "model/code",
    "models_dir": "models",
    "output_dir": "output",
    "output_data_dir": "output/data",
    "output_intermediate_dir": "output/intermediate",
    "failure_file": "output/failure",
    "default_checkpoint_dir": "checkpoints",
    "config_dir": "config",
    "processing_job_config_file": "config/processingjobconfig.json",
    "processing_resource_config_file": "config/resourceconfig.json",
    "processing_dir": "processing",
    "exit_message_file": "output/message",
}


def test_every_path_property_is_covered() -> None:
    properties = {name for name, value in vars(Layout).items() if isinstance(value, property)}
    assert properties == set(EXPECTED)


def test_default_root_is_opt_ml() -> None:
    assert Path("/opt/ml") == DEFAULT_ROOT
    layout = Layout()
    assert layout.root == DEFAULT_ROOT
    assert layout.failure_file == Path("/opt/ml/output/failure")
    assert layout.hyperparameters_file == Path("/opt/ml/input/config/hyperparameters.json")


@pytest.mark.parametrize(("name", "relative"), sorted(EXPECTED.items()))
def test_paths_follow_a_relocated_root(tmp_path: Path, name: str, relative: str) -> None:
    root = tmp_path / "relocated"
    assert getattr(Layout(root), name) == root / relative


def test_channel_paths(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert layout.channel_dir("train") == tmp_path / "input" / "data" / "train"
    assert layout.channel_dir("my-val.v2") == tmp_path / "input" / "data" / "my-val.v2"
    assert layout.channel_fifo("train", 0) == tmp_path / "input" / "data" / "train_0"
    assert layout.channel_fifo("train", 12) == tmp_path / "input" / "data" / "train_12"


def test_nothing_touches_the_disk(tmp_path: Path) -> None:
    root = tmp_path / "does-not-exist"
    layout = Layout(root)
    for name in EXPECTED:
        getattr(layout, name)
    layout.channel_dir("train")
    layout.channel_fifo("train", 3)
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []


@given(st.from_regex(r"[A-Za-z0-9.\-_]{1,64}", fullmatch=True).filter(lambda n: n not in {".", ".."}),
       st.integers(min_value=0, max_value=10_000))
def test_channel_paths_stay_under_input_data(name: str, epoch: int) -> None:
    layout = Layout(Path("/root-x"))
    assert layout.channel_dir(name).parent == layout.input_data_dir
    assert layout.channel_fifo(name, epoch).parent == layout.input_data_dir
    assert layout.channel_fifo(name, epoch).name == f"{name}_{epoch}"


def test_layout_is_frozen_and_comparable() -> None:
    layout = Layout(Path("/a"))
    assert layout == Layout(Path("/a"))
    assert hash(layout) == hash(Layout(Path("/a")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.root = Path("/b")  # type: ignore[misc]
