"""Streaming linear regression by mini-batch SGD, read from a Pipe-mode RecordIO-protobuf channel.

Run by optml's ``train`` on every host as ``python train.py --epochs N --learning-rate LR
--batch-size B``. Each epoch opens the next FIFO (``train_0``, ``train_1``, ...) through
``toolkit.channels.open_channel`` and decodes the stream batch by batch with
``recordio_protobuf.iter_decoded``, so memory stays bounded by one batch whatever the data size:
the data never lands on disk in the container.

The channel is ``ShardedByS3Key``: this host receives a disjoint part of the objects and trains
on it alone (no communication between hosts). It writes

* ``$SM_MODEL_DIR/weights-<host>.json``: its weights, bias and the number of rows it learned
  from; local mode (like the service) packs every host's model directory into one
  ``model.tar.gz``, and ``inference.py`` averages the hosts' weights, weighted by rows, when the
  model is loaded (one-shot parameter averaging);
* ``$SM_OUTPUT_DATA_DIR/shard-<host>.json``: what it saw -- the input mode
  ``inputdataconfig.json`` gave, whether each epoch really came through a FIFO, rows per epoch
  and a short digest of every row of the first epoch, so the driver can show that the hosts'
  shards are disjoint and together cover the data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np

from toolkit.channels import open_channel
from toolkit.formats import recordio_protobuf

CHANNEL = "train"


def row_digests(features: np.ndarray, labels: np.ndarray) -> list[str]:
    """A 64-bit digest of each (row, label) pair: identifies rows without shipping the data."""
    rows = np.column_stack([features, labels]).astype("<f4")
    return [hashlib.blake2b(row.tobytes(), digest_size=8).hexdigest() for row in rows]


def train(args: argparse.Namespace, host: str) -> tuple[np.ndarray, float, dict[str, object]]:
    channel = open_channel(CHANNEL)
    weights: np.ndarray | None = None
    bias = 0.0
    epochs: list[dict[str, object]] = []
    first_epoch_rows: list[str] = []
    for epoch_index in range(args.epochs):
        rows, squared_error, is_fifo = 0, 0.0, False
        digests: list[str] = []
        with channel.open_epoch() as epoch:
            for source, stream in epoch.streams():
                is_fifo = stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
                for decoded in recordio_protobuf.iter_decoded(stream, source=source,
                                                              batch_size=args.batch_size):
                    if decoded.labels is None:
                        raise SystemExit(f"{source}: records without a label; this model "
                                         "needs label['values'] in every record")
                    x = np.asarray(decoded.features, dtype=np.float64)
                    y = np.asarray(decoded.labels, dtype=np.float64).reshape(-1)
                    if weights is None:
                        weights = np.zeros(x.shape[1])
                    error = x @ weights + bias - y
                    squared_error += float(error @ error)
                    weights -= args.learning_rate * (x.T @ error) / len(y)
                    bias -= args.learning_rate * float(error.mean())
                    rows += len(y)
                    digests.extend(row_digests(decoded.features, decoded.labels))
        if rows == 0 or weights is None:
            raise SystemExit(f"epoch {epoch_index}: channel {CHANNEL!r} delivered no records")
        epochs.append({"epoch": epoch.number, "fifo": is_fifo, "rows": rows,
                       "digest": hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()})
        if epoch_index == 0:
            first_epoch_rows = sorted(digests)
        print(f"host={host} epoch={epoch_index} rows={rows} mse={squared_error / rows:.6f}",
              flush=True)
    if weights is None:
        raise SystemExit("--epochs must be at least 1")
    seen = {"host": host, "input_mode": channel.mode.value, "epochs": epochs,
            "rows": epochs[-1]["rows"], "first_epoch_rows": first_epoch_rows}
    return weights, bias, seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=25)
    args = parser.parse_args()
    host = os.environ["SM_CURRENT_HOST"]

    weights, bias, seen = train(args, host)
    rows = seen["rows"]
    print(f"host={host} weights={np.round(weights, 4).tolist()} bias={bias:.4f}", flush=True)

    model_dir = Path(os.environ["SM_MODEL_DIR"])
    (model_dir / f"weights-{host}.json").write_text(json.dumps(
        {"host": host, "weights": weights.tolist(), "bias": bias, "rows": rows}))
    if os.environ.get("SM_IS_MASTER") == "true":  # one copy is enough; every host has it
        (model_dir / "code").mkdir(exist_ok=True)
        shutil.copy(Path(__file__).with_name("inference.py"), model_dir / "code" / "inference.py")
    seen["input_data_config"] = json.loads(os.environ["SM_INPUT_DATA_CONFIG"])
    output = Path(os.environ["SM_OUTPUT_DATA_DIR"])
    (output / f"shard-{host}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
