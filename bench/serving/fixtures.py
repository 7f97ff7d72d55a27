"""Model trees and request payloads of the benchmark, written into a temp dir at run time.

Every server reads the same tree: ``<base>/model/code/inference.py`` (the handler module) and
the model files in ``<base>/model``. That is where the SDK repacks inference code
and where the reference toolkit looks for it, so one tree serves all peers.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

APPS_DIR = Path(__file__).resolve().parent / "apps"
"""Our own small apps and handler modules (no-op model, BYO Flask app, hello WSGI, launcher)."""

JSON = "application/json"


@dataclass(frozen=True)
class Payload:
    """One POST body and its content type, sent unchanged by every request of a run."""

    body: bytes
    content_type: str = JSON


NOOP_PAYLOAD = Payload(json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]]}).encode())


@dataclass(frozen=True)
class MlpShape:
    """The ONNX MLP of the micro-batching case.

    Hidden width 2048 makes the weights (~36 MB) larger than the caches, so one row is a
    memory-bound matrix-vector pass and a batch reuses each weight load for every row: the case
    batching is meant for.
    """

    inputs: int = 256
    hidden: int = 2048
    hidden_layers: int = 2
    outputs: int = 16


def write_model_tree(base: Path, inference_source: str) -> Path:
    """Create ``base/model/code/inference.py``; return the model dir (``base/model``)."""
    code_dir = base / "model" / "code"
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "inference.py").write_text(inference_source)
    return base / "model"


def write_noop_model(base: Path) -> Path:
    """The no-op model: a trivial object from model_fn, predict_fn echoes the parsed JSON."""
    return write_model_tree(base, (APPS_DIR / "noop_inference.py").read_text())


def build_mlp_onnx(path: Path, shape: MlpShape = MlpShape(), seed: int = 0) -> None:
    """Write a ReLU MLP ``x[N, inputs] -> y[N, outputs]`` as ONNX (Gemm + Relu nodes).

    Built with the onnx helper API from seeded random weights, so the run needs no download and
    every run serves the same model. Weights are scaled by 1/sqrt(fan_in) to keep activations
    finite through the layers.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    widths = [shape.inputs] + [shape.hidden] * (shape.hidden_layers + 1) + [shape.outputs]
    nodes, initializers = [], []
    current = "x"
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        weight = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        bias = np.zeros(fan_out, dtype=np.float32)
        initializers += [numpy_helper.from_array(weight, f"w{index}"),
                         numpy_helper.from_array(bias, f"b{index}")]
        last = index == len(widths) - 2
        gemm_out = "y" if last else f"h{index}"
        nodes.append(helper.make_node("Gemm", [current, f"w{index}", f"b{index}"], [gemm_out]))
        if not last:
            nodes.append(helper.make_node("Relu", [gemm_out], [f"r{index}"]))
            current = f"r{index}"
    graph = helper.make_graph(
        nodes, "bench_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", shape.inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", shape.outputs])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def mlp_payload(shape: MlpShape = MlpShape(), seed: int = 1) -> Payload:
    """One request of the batching case: a single row of ``shape.inputs`` floats."""
    import numpy as np

    row = np.random.default_rng(seed).standard_normal(shape.inputs).round(4).tolist()
    return Payload(json.dumps({"instances": [row]}).encode())


def write_onnx_model(base: Path, batched: bool, shape: MlpShape = MlpShape()) -> Path:
    """The ONNX MLP tree; ``batched`` adds the ``batch_predict_fn`` hook to inference.py."""
    source = (APPS_DIR / "onnx_inference.py").read_text()
    if batched:
        source += (APPS_DIR / "onnx_batch_hook.py").read_text()
    model_dir = write_model_tree(base, source)
    build_mlp_onnx(model_dir / "mlp.onnx", shape)
    return model_dir


# -- the micro-batching benchmark (bench/bench_batching.py) ---------------------------------------
HEAVY_MLP = MlpShape(hidden=4096)
"""The heavy model of the batching benchmark: ~138 MB of float32 weights, over 4x the 32 MB L3
of the reference machine (and above the L3 of most servers), so a single row is a memory-bound
pass over every weight (~9 ms of CPU) and a batch of 8 reuses each weight load for all 8 rows
(~1.4x one row). The wider the weights, the less the fixed per-request serving cost (~0.5-1 ms)
dilutes the batching gain (hidden 3072: 1 row 4.6-5.9 ms here, 8 rows 1.33-1.4x that)."""

BATCH_STATS_ENV = "BENCH_BATCH_STATS"
"""Where the batched variants write their batch counts (``<value>.<pid>``, one file per worker)."""

_BATCH_STATS_SOURCE = '''

# --- appended for the batched variant: optml's opt-in micro-batching hook -----------------------
import os as _os

_STATS = _os.environ.get("BENCH_BATCH_STATS")
_counts = [0, 0, 0]  # batches, items, largest batch


def _record(size):
    """Count batches in memory, rewriting this worker's small stats file every 64 batches: the
    count must cost the trivial model next to nothing, or the benchmark would measure itself."""
    counts = _counts
    counts[0] += 1
    counts[1] += size
    if size > counts[2]:
        counts[2] = size
    if not counts[0] & 63 and _STATS:
        with open(f"{_STATS}.{_os.getpid()}", "w") as out:
            out.write(f"{counts[0]} {counts[1]} {counts[2]}\\n")
'''

_NOOP_BATCH_HOOK = '''

def batch_predict_fn(inputs, model):
    """The trivial model, batched: every request's parsed JSON comes back unchanged."""
    _record(len(inputs))
    return inputs
'''

_ONNX_BATCH_HOOK = '''

def batch_predict_fn(inputs, model):
    """Every queued request's rows as one matrix product, split back per request."""
    _record(len(inputs))
    sizes = [len(rows) for rows in inputs]
    outputs = model.run(None, {"x": np.concatenate(inputs, axis=0)})[0]
    return np.split(outputs, np.cumsum(sizes)[:-1])
'''


def write_trivial_model(base: Path, batched: bool) -> Path:
    """The no-op model; ``batched`` adds a ``batch_predict_fn`` that echoes each input."""
    source = (APPS_DIR / "noop_inference.py").read_text()
    if batched:
        source += _BATCH_STATS_SOURCE + _NOOP_BATCH_HOOK
    return write_model_tree(base, source)


def write_heavy_model(base: Path, batched: bool, shape: MlpShape = HEAVY_MLP) -> Path:
    """The ONNX MLP of ``shape``; ``batched`` adds a ``batch_predict_fn`` (one matrix product)."""
    source = (APPS_DIR / "onnx_inference.py").read_text()
    if batched:
        source += _BATCH_STATS_SOURCE + _ONNX_BATCH_HOOK
    model_dir = write_model_tree(base, source)
    build_mlp_onnx(model_dir / "mlp.onnx", shape)
    return model_dir


def read_batch_stats(prefix: Path) -> tuple[int, int, int] | None:
    """Sum the per-worker stats files under ``prefix``: (batches, items, largest batch)."""
    batches = items = largest = 0
    for path in prefix.parent.glob(f"{prefix.name}.*"):
        try:
            b, i, m = (int(x) for x in path.read_text().split())
        except (OSError, ValueError):
            continue  # a worker was rewriting it: skip that sample
        batches, items, largest = batches + b, items + i, max(largest, m)
    return (batches, items, largest) if batches else None
