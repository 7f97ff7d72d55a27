"""The one place that knows the ``/opt/ml`` directory layout.

The root is relocatable (``SAGEMAKER_BASE_DIR``) so tests and local mode's process backend can run
jobs without containers. A :class:`Layout` only computes paths; it never touches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/opt/ml")


@dataclass(frozen=True)
class Layout:
    """Paths of the /opt/ml tree under ``root``."""

    root: Path = DEFAULT_ROOT

    # -- input -------------------------------------------------------------------------------
    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def input_config_dir(self) -> Path:
        return self.input_dir / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.input_config_dir / "hyperparameters.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.input_config_dir / "inputdataconfig.json"

    @property
    def resource_config_file(self) -> Path:
        return self.input_config_dir / "resourceconfig.json"

    @property
    def checkpoint_config_file(self) -> Path:
        return self.input_config_dir / "checkpointconfig.json"

    @property
    def input_data_dir(self) -> Path:
        return self.input_dir / "data"

    def channel_dir(self, channel: str) -> Path:
        """File / FastFile mode: the directory holding the channel's files."""
        return self.input_data_dir / channel

    def channel_fifo(self, channel: str, epoch: int) -> Path:
        """Pipe mode: the FIFO of ``channel`` for ``epoch`` (0, 1, 2, ...)."""
        return self.input_data_dir / f"{channel}_{epoch}"

    # -- code, model, output -----------------------------------------------------------------
    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def model_code_dir(self) -> Path:
        """Serving: where the SDK repacks inference code inside the model."""
        return self.model_dir / "code"

    @property
    def models_dir(self) -> Path:
        """Multi-model serving: the models the platform downloads."""
        return self.root / "models"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def output_intermediate_dir(self) -> Path:
        return self.output_dir / "intermediate"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def default_checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    # -- processing jobs ---------------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        """Processing: the platform's configuration (not ``input/config``, as for training)."""
        return self.root / "config"

    @property
    def processing_job_config_file(self) -> Path:
        return self.config_dir / "processingjobconfig.json"

    @property
    def processing_resource_config_file(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    @property
    def processing_dir(self) -> Path:
        """Every processing input and output lives below it."""
        return self.root / "processing"

    @property
    def exit_message_file(self) -> Path:
        """Processing: what the program leaves here becomes the job's ExitMessage."""
        return self.output_dir / "message"
