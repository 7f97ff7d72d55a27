"""Draw a job's metric series into a PNG (``optml local metrics NAME --plot FILE.png``).

matplotlib is an optional extra (``pip install 'optml[plot]'``): it is imported only when a plot
is asked for, and its absence is a clear :class:`PlotUnavailable`, not an ImportError traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from toolkit.errors import OptmlError


class PlotUnavailable(OptmlError):
    """matplotlib is not installed, or there is nothing to draw."""


class PlotExtraMissing(PlotUnavailable):
    """matplotlib is not installed: the ``plot`` extra is missing (a usage error, not a failed
    plot)."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotExtraMissing("plotting metrics needs the 'plot' extra (matplotlib is not "
                               "installed): pip install 'optml[plot]'") from None
    matplotlib.use("Agg")  # files only: never open a window or need a display
    import matplotlib.pyplot as plt

    return plt


def plot_series(points: Sequence[dict[str, Any]], target: Path, title: str = "") -> int:
    """One subplot per metric, value against seconds since the job's first point.

    ``points`` are metrics.jsonl records (``MetricName``, ``Value``, ISO ``Timestamp``).
    Returns the number of metrics drawn.
    """
    if not points:
        raise PlotUnavailable(f"no metric points to plot into {target}")
    series: dict[str, tuple[list[float], list[float]]] = {}
    start = min(datetime.fromisoformat(p["Timestamp"]) for p in points)
    for point in points:
        xs, ys = series.setdefault(point["MetricName"], ([], []))
        xs.append((datetime.fromisoformat(point["Timestamp"]) - start).total_seconds())
        ys.append(float(point["Value"]))
    plt = _pyplot()
    figure, axes = plt.subplots(len(series), 1, squeeze=False, sharex=True,
                                figsize=(8, 2.5 * len(series)))
    try:
        for axis, (name, (xs, ys)) in zip(axes[:, 0], series.items()):
            axis.plot(xs, ys, marker="o" if len(xs) < 50 else None)
            axis.set_ylabel(name)
            axis.grid(True, alpha=0.3)
        axes[-1, 0].set_xlabel("seconds since the first point")
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        figure.savefig(target, format="png")  # into a directory the caller checked exists
    finally:
        plt.close(figure)
    return len(series)
