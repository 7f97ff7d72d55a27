"""Helpers to lay out a relocated /opt/ml tree and run ``optml train`` on it as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.layout import Layout


@dataclass
class TrainJob:
    root: Path
    layout: Layout

    @classmethod
    def create(cls, root: Path, *, hyperparameters: dict[str, str] | None = None,
               channels: dict[str, Any] | None = None, hosts: list[str] | None = None,
               current_host: str | None = None, interface: str = "eth0",
               checkpoint: dict[str, str] | None = None,
               code: dict[str, str] | None = None) -> TrainJob:
        layout = Layout(root)
        layout.input_config_dir.mkdir(parents=True, exist_ok=True)
        hosts = hosts or ["algo-1"]
        layout.hyperparameters_file.write_text(json.dumps(hyperparameters or {}))
        layout.input_data_config_file.write_text(json.dumps(
            channels if channels is not None else {"train": {"TrainingInputMode": "File"}}))
        layout.resource_config_file.write_text(json.dumps({
            "current_host": current_host or hosts[0], "hosts": hosts,
            "network_interface_name": interface, "current_instance_type": "ml.m5.large"}))
        if checkpoint is not None:
            layout.checkpoint_config_file.write_text(json.dumps(checkpoint))
        layout.code_dir.mkdir(parents=True, exist_ok=True)
        for name, text in (code or {}).items():
            path = layout.code_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return cls(root, layout)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SM_", "SAGEMAKER_", "OPTML_"))}
        env["SAGEMAKER_BASE_DIR"] = str(self.root)
        env.update(extra)
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "toolkit.cli", "train"]

    def run(self, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(), env=self.env(**extra), capture_output=True,
                              text=True, timeout=timeout, check=False)

    def start(self, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(), env=self.env(**extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    @property
    def failure(self) -> str:
        return self.layout.failure_file.read_text()
