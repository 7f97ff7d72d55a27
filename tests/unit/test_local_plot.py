"""The optional metrics PNG."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from local_mode.plot import PlotUnavailable, plot_series

POINTS = [{"MetricName": "loss", "Value": v, "Timestamp": f"2024-01-01T00:00:0{i}+00:00"}
          for i, v in enumerate([0.9, 0.5, 0.3])] + \
         [{"MetricName": "acc", "Value": 0.7, "Timestamp": "2024-01-01T00:00:05+00:00"}]


def test_one_subplot_per_metric_into_a_png(tmp_path: Path) -> None:
    target = tmp_path / "m.png"
    assert plot_series(POINTS, target, title="job") == 2
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_plot_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlotUnavailable, match="no metric points"):
        plot_series([], tmp_path / "m.png")


def test_missing_matplotlib_says_which_extra_to_install(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def without_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_matplotlib)
    with pytest.raises(PlotUnavailable, match=r"optml\[plot\]"):
        plot_series(POINTS, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()
