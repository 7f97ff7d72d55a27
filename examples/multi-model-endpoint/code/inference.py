"""Serving every region's model from one container (a multi-model endpoint).

The container runs with SAGEMAKER_MULTI_MODEL=true: the platform (here, local mode's router)
loads a model with ``POST /models`` the first time a request names it as ``TargetModel``, which
calls ``model_fn`` with that model's extracted directory, and unloads the least recently used
model when the container answers 507 (out of memory).

DEMO DEVICE -- ``DEMO_MAX_LOADED_MODELS``: these models are a few hundred bytes each, so memory
never runs out for real. To show what happens when more models are asked for than fit, the
model's Environment sets ``DEMO_MAX_LOADED_MODELS=2`` and ``model_fn`` raises ``MemoryError``
while two models are already in memory in this worker. optml answers a ``MemoryError`` from
``model_fn`` with 507, exactly as it would for a real out-of-memory, and the platform reacts to
that status, not to the cause. A real model needs no such code.

Each answer says which models were in memory when it was computed (``resident_models``), so the
example can show the least recently used one being unloaded.
"""

from __future__ import annotations

import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.serving import HTTPError, LoadContext, RequestContext


@dataclass(eq=False)
class RegionModel:
    """One region's linear model (a class, not a dict, so the resident set can hold it weakly:
    when optml unloads the model and drops its reference, it leaves the set by itself)."""

    name: str
    region: str
    features: list[str]
    coef: np.ndarray
    intercept: float


_RESIDENT: weakref.WeakSet[RegionModel] = weakref.WeakSet()
"""The models alive in this worker process, for the demo cap and ``resident_models``."""


def resident() -> list[str]:
    return sorted(model.name for model in _RESIDENT)


def model_fn(model_dir: str, context: LoadContext) -> RegionModel:
    limit = int(os.environ.get("DEMO_MAX_LOADED_MODELS") or 0)  # demo device; 0: no cap
    if limit and len(_RESIDENT) >= limit:
        print(f"[demo cap] {context.model_name}: {len(_RESIDENT)} of {limit} model slots in "
              f"use {resident()}; raising MemoryError (the server answers 507)", flush=True)
        raise MemoryError(f"demo cap DEMO_MAX_LOADED_MODELS={limit} reached")
    spec = json.loads((Path(model_dir) / "model.json").read_text())
    model = RegionModel(name=context.model_name or Path(model_dir).name, region=spec["region"],
                        features=list(spec["features"]),
                        coef=np.asarray(spec["coef"], dtype=np.float64),
                        intercept=float(spec["intercept"]))
    _RESIDENT.add(model)
    print(f"[model_fn] loaded {model.name} (region {model.region}); in memory: {resident()}",
          flush=True)
    return model


def predict_fn(data: Any, model: RegionModel) -> dict[str, Any]:
    rows = np.asarray(data, dtype=np.float64)
    rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
    if rows.ndim != 2 or rows.shape[1] != len(model.features):
        raise HTTPError(400, f"expected rows of {len(model.features)} values "
                             f"({', '.join(model.features)}), got shape {rows.shape}")
    return {"region": model.region, "prices": rows @ model.coef + model.intercept}


def output_fn(prediction: dict[str, Any], accept: str,
              context: RequestContext) -> tuple[str, str]:
    if not accept.startswith(("application/json", "*/*")):
        raise HTTPError(406, f"this model answers application/json, not {accept!r}")
    return json.dumps({"model": context.model_name, "region": prediction["region"],
                       "predictions": [float(p) for p in prediction["prices"]],
                       "resident_models": resident()}), "application/json"
