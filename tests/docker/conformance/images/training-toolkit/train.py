"""A user's training script for the reference training toolkit (sagemaker-training).

It records what the container saw -- argv, the toolkit's SM_* environment, the platform's config
files -- and what it received -- the File channel ``train``, the Pipe channel ``stream`` (a FIFO
on the service; the SDK's local mode hands it over as files), a message from every other host by
host name -- as ``host-<index>.json`` in the model directory, where the tests read it back.
It prints ``loss=...`` lines for MetricDefinitions and fails on purpose when the ``fail``
hyperparameter is set (and stands for a longer training with ``seconds``): it describes the failure in /opt/ml/output/failure, as the platform asks
(the toolkit keeps a failure file the script wrote; its own names only the exit code).
"""

import json
import os
import pathlib
import socket
import sys
import time

PORT = 7777
hps = json.loads(os.environ["SM_HPS"])
time.sleep(float(hps.get("seconds", 0)))
if "fail" in hps:
    message = f"user-failure-marker: {hps['fail']}"
    pathlib.Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text(message)
    raise ValueError(message)

host = os.environ["SM_CURRENT_HOST"]
hosts = json.loads(os.environ["SM_HOSTS"])
index = hosts.index(host)
config_dir = pathlib.Path("/opt/ml/input/config")
config = {p.name: json.loads(p.read_text()) for p in sorted(config_dir.glob("*.json"))}
channels = config.get("inputdataconfig.json", {})


def read_channel(name):
    """The bytes of a channel: the FIFO ``<name>_0`` in Pipe mode, else every file in order."""
    if name not in channels:
        return None
    directory = pathlib.Path(os.environ["SM_CHANNEL_" + name.upper()])
    if channels[name]["TrainingInputMode"] == "Pipe":
        with open(f"{directory}_0", "rb") as fifo:
            return fifo.read().decode()
    return "".join(p.read_text() for p in sorted(directory.iterdir()) if p.is_file())


def exchange():
    """The master accepts one message from each other host; the others connect to it by name."""
    if len(hosts) == 1:
        return {}
    if index == 0:
        server = socket.create_server(("0.0.0.0", PORT))
        server.settimeout(120)
        heard = {}
        while len(heard) < len(hosts) - 1:
            connection, _ = server.accept()
            with connection:
                peer = connection.makefile("rb").readline().decode().strip()
                heard[peer.split()[-1]] = peer
                connection.sendall(f"welcome from {host}\n".encode())
        return heard
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection((hosts[0], PORT), timeout=5) as connection:
                connection.sendall(f"hello from {host}\n".encode())
                return {hosts[0]: connection.makefile("rb").readline().decode().strip()}
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


for epoch in range(3):
    print(f"epoch={epoch} loss={1.0 / (epoch + 2):.4f};", flush=True)

report = {
    "argv": sys.argv[1:],
    "env": {k: v for k, v in os.environ.items()
            if k.startswith("SM_") and k not in ("SM_TRAINING_ENV",)},
    "training_env": json.loads(os.environ["SM_TRAINING_ENV"]),
    "config": config,
    "train": read_channel("train"),
    "stream": read_channel("stream"),
    "peers": exchange(),
    "cwd": os.getcwd(),
}
model_dir = pathlib.Path(os.environ["SM_MODEL_DIR"])
(model_dir / f"host-{index}.json").write_text(json.dumps(report, indent=1, sort_keys=True))
pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"], f"summary-{index}.txt").write_text("trained\n")
print(f"done on {host}", flush=True)
