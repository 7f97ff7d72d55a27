"""The processing job's program: clean and featurise this instance's share of the raw CSVs.

The job runs it on every instance (``ContainerEntrypoint``: ``python3
/opt/ml/code/preprocess.py``). Every path comes from the platform, nothing is guessed:

- ``/opt/ml/config/processingjobconfig.json`` gives the ``LocalPath`` of the input named
  ``raw`` and of the outputs named ``train``, ``validation`` and ``report``;
- ``/opt/ml/config/resourceconfig.json`` gives ``current_host``. Every instance uploads into the
  same S3 prefix of each output, so every file written is named after the host
  (``part-algo-1.csv``): two instances never overwrite each other's output.

The input is ``ShardedByS3Key``: the platform copies only this instance's share of the raw
files, so the program simply reads every ``*.csv`` it finds. A record goes to ``validation``
when a hash of its customer_id says so (not by position), so the split does not depend on how
the files were sharded. The outputs are CSV without a header, label first, as the training job's
channels expect. ``/opt/ml/output/message`` becomes the job's ExitMessage.

``/opt/ml`` is where the service (and local mode's Docker backend) puts the tree; local mode's
process backend runs this program without a container on a relocated tree and says where in
``SAGEMAKER_BASE_DIR`` (its config files then name the relocated paths too).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import features

ML_ROOT = Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))


def local_paths(config: dict[str, Any]) -> tuple[dict[str, Path], dict[str, Path]]:
    """``({input name: LocalPath}, {output name: LocalPath})`` from processingjobconfig.json."""
    inputs = {entry["InputName"]: Path(entry["S3Input"]["LocalPath"])
              for entry in config.get("ProcessingInputs", []) if "S3Input" in entry}
    outputs = {entry["OutputName"]: Path(entry["S3Output"]["LocalPath"])
               for entry in config.get("ProcessingOutputConfig", {}).get("Outputs", [])
               if "S3Output" in entry}
    for name, paths in (("raw", inputs), ("train", outputs), ("validation", outputs),
                        ("report", outputs)):
        if name not in paths:
            raise SystemExit(f"processingjobconfig.json has no input or output named {name!r}")
    return inputs, outputs


def in_validation(customer_id: str, percent: int) -> bool:
    return zlib.crc32(customer_id.encode()) % 100 < percent


def row(customer: features.Customer) -> str:
    values = [customer.churned, *features.featurise(customer)]
    return ",".join(f"{v:.6g}" for v in values) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--validation-percent", type=int, default=20)
    args = parser.parse_args()

    config = json.loads((ML_ROOT / "config" / "processingjobconfig.json").read_text())
    resources = json.loads((ML_ROOT / "config" / "resourceconfig.json").read_text())
    host = resources["current_host"]
    inputs, outputs = local_paths(config)

    files = sorted(inputs["raw"].rglob("*.csv"))
    seen: set[str] = set()
    dropped: Counter[str] = Counter()
    per_file: dict[str, dict[str, int]] = {}
    splits: dict[str, list[str]] = {"train": [], "validation": []}
    for path in files:
        counts = per_file.setdefault(path.relative_to(inputs["raw"]).as_posix(),
                                     {"records": 0, "kept": 0})
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            if header != [*features.COLUMNS, features.LABEL]:
                raise SystemExit(f"{path.name}: unexpected header {header}")
            for values in reader:
                counts["records"] += 1
                try:
                    customer = features.parse(values, labelled=True)
                    if customer.customer_id in seen:
                        raise features.BadRecord("duplicate", customer.customer_id)
                except features.BadRecord as bad:
                    dropped[bad.reason] += 1
                    continue
                seen.add(customer.customer_id)
                counts["kept"] += 1
                split = "validation" if in_validation(customer.customer_id,
                                                      args.validation_percent) else "train"
                splits[split].append(row(customer))

    for split, rows in splits.items():
        (outputs[split] / f"part-{host}.csv").write_text("".join(rows))
    records = sum(c["records"] for c in per_file.values())
    report = {"host": host, "hosts": resources["hosts"], "files": per_file,
              "records": records, "kept": len(seen), "dropped": dict(sorted(dropped.items())),
              "train_rows": len(splits["train"]), "validation_rows": len(splits["validation"]),
              "features": list(features.FEATURES),
              "local_paths": {name: str(path) for name, path in {**inputs, **outputs}.items()}}
    (outputs["report"] / f"{host}.json").write_text(json.dumps(report, indent=2))
    message = (f"{host}: kept {len(seen)} of {records} records from {len(files)} files "
               f"({len(splits['train'])} train, {len(splits['validation'])} validation); "
               f"dropped {dict(sorted(dropped.items()))}")
    print(message, flush=True)
    (ML_ROOT / "output" / "message").write_text(message)


if __name__ == "__main__":
    main()
