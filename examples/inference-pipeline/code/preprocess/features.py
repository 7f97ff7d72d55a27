"""The feature engineering of the pipeline, in one place: the preprocessing container serves it,
and the model's training job imports this very file from the preprocessor's artifact, so the
model is trained on exactly what it will receive at serving time (no train/serve skew).

Raw rows: ``temperature_c, hour, floor_area_m2``. Engineered, then standardised with the mean
and standard deviation fitted by the preprocessing training job::

    temperature_c, heating_cooling = (temperature_c - 18)^2 / 10,
    hour_sin, hour_cos (the hour on a 24-hour circle), log_floor_area
"""

from __future__ import annotations

from typing import Any

import numpy as np

INPUTS = ["temperature_c", "hour", "floor_area_m2"]
OUTPUTS = ["temperature_c", "heating_cooling", "hour_sin", "hour_cos", "log_floor_area"]
COMFORT_C = 18.0


def engineer(raw: np.ndarray) -> np.ndarray:
    """Raw rows -> engineered features; ValueError naming the row and column of bad input."""
    rows = np.asarray(raw, dtype=np.float64)
    rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
    if rows.ndim != 2 or rows.shape[1] != len(INPUTS):
        raise ValueError(f"expected rows of {len(INPUTS)} values ({', '.join(INPUTS)}), "
                         f"got shape {rows.shape}")
    checks = ((0, np.isfinite(rows[:, 0]), "is not a finite number"),
              (1, (rows[:, 1] >= 0) & (rows[:, 1] < 24), "is outside [0, 24)"),
              (2, np.isfinite(rows[:, 2]) & (rows[:, 2] > 0), "is not a positive number"))
    for column, ok, problem in checks:  # NaN fails every comparison, so it is caught too
        bad = np.flatnonzero(~ok)
        if bad.size:
            raise ValueError(f"row {int(bad[0])}: {INPUTS[column]}={rows[bad[0], column]:g} "
                             f"{problem}")
    temperature, hour, area = rows.T
    angle = 2 * np.pi * hour / 24.0
    return np.column_stack([temperature, (temperature - COMFORT_C) ** 2 / 10.0,
                            np.sin(angle), np.cos(angle), np.log(area)])


def fit(raw: np.ndarray) -> dict[str, Any]:
    """The standardisation parameters of ``raw`` (JSON-able: the preprocessor's artifact)."""
    engineered = engineer(raw)
    std = engineered.std(axis=0)
    return {"inputs": INPUTS, "outputs": OUTPUTS, "mean": engineered.mean(axis=0).tolist(),
            "std": np.where(std > 0, std, 1.0).tolist()}


def transform(raw: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Raw rows -> the standardised features the model is trained on and serves."""
    standardised = (engineer(raw) - np.asarray(params["mean"])) / np.asarray(params["std"])
    return np.asarray(standardised, dtype=np.float64)
