"""Pipe mode end to end: a real PipeFeeder thread, real FIFOs, the channel reader."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from toolkit.channels import (
    Channel,
    EpochStatus,
    LocalFileSource,
    PipeFeeder,
    open_channel,
)
from toolkit.channels.feeder import SPLICE_MIN_SIZE
from toolkit.formats import recordio
from toolkit.formats.errors import FormatError
from toolkit.layout import Layout

OBJECTS = {f"part-{i:02d}": bytes([65 + i]) * (1000 + 37 * i) for i in range(10)}
OBJECTS["dir/nested"] = b"nested!" * 500_000  # larger than the (1 MiB) pipe buffer


@pytest.fixture()
def source_dir(tmp_path: Path) -> Path:
    root = tmp_path / "s3"
    for key, data in OBJECTS.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return root


@pytest.fixture()
def feeders() -> Iterator[list[PipeFeeder]]:
    made: list[PipeFeeder] = []
    yield made
    for feeder in made:
        feeder.stop()
        assert not feeder.running
        assert not list(feeder.data_dir.glob("*_*")), "FIFOs left behind"


@pytest.fixture()
def start(feeders: list[PipeFeeder], tmp_path: Path) -> Callable[..., PipeFeeder]:
    def start_feeder(source: Path, host: str = "algo-1", **options: object) -> PipeFeeder:
        data_dir = Layout(tmp_path / host).input_data_dir
        options.setdefault("reader_timeout", 20.0)
        feeder = PipeFeeder(LocalFileSource(source), data_dir, "train",
                            **options)  # type: ignore[arg-type]
        feeders.append(feeder)
        return feeder.start()
    return start_feeder


def reader(tmp_path: Path, host: str = "algo-1", **config: str) -> Channel:
    return open_channel("train", layout=Layout(tmp_path / host), input_data_config={
        "train": {"TrainingInputMode": "Pipe", **config}}, open_timeout=20, read_timeout=20)


def everything() -> bytes:
    return b"".join(OBJECTS[k] for k in sorted(OBJECTS))


def test_three_epochs_read_to_eof(source_dir: Path, tmp_path: Path,
                                  start: Callable[..., PipeFeeder]) -> None:
    feeder = start(source_dir, epochs=3)
    channel = reader(tmp_path)
    for number in range(3):
        with channel.open_epoch() as epoch:
            assert epoch.number == number
            assert b"".join(epoch.records()) == everything()
    assert feeder.wait(20)
    assert [r.status for r in feeder.results] == [EpochStatus.COMPLETE] * 3
    assert all(r.objects == len(OBJECTS) for r in feeder.results)


def test_early_close_then_a_full_epoch(source_dir: Path, tmp_path: Path,
                                       start: Callable[..., PipeFeeder]) -> None:
    feeder = start(source_dir, epochs=2)
    channel = reader(tmp_path)
    with channel.open_epoch() as epoch:
        first = next(epoch.records(chunk_size=100))
        assert first == everything()[:100]
    with channel.open_epoch() as epoch:
        assert epoch.number == 1
        assert b"".join(epoch.records()) == everything()
    assert feeder.wait(20)
    assert [r.status for r in feeder.results] == [EpochStatus.READER_CLOSED,
                                                  EpochStatus.COMPLETE]


def test_a_reader_that_never_opens(source_dir: Path, tmp_path: Path,
                                   start: Callable[..., PipeFeeder]) -> None:
    feeder = start(source_dir, epochs=2, reader_timeout=0.3)
    assert feeder.wait(20)
    assert [r.status for r in feeder.results] == [EpochStatus.NO_READER] * 2
    assert not list(feeder.data_dir.glob("train_*"))


def test_stop_interrupts_a_waiting_feeder(source_dir: Path, tmp_path: Path,
                                          start: Callable[..., PipeFeeder]) -> None:
    feeder = start(source_dir, epochs=5, reader_timeout=3600)
    channel = reader(tmp_path)
    channel.open_epoch().close()  # the FIFO exists: the feeder is now waiting or writing
    feeder.stop()
    assert not feeder.running
    assert not list(feeder.data_dir.glob("train_*"))


def test_stop_interrupts_a_feeder_blocked_on_a_full_pipe(
        source_dir: Path, tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    feeder = start(source_dir, epochs=1)
    channel = reader(tmp_path)
    with channel.open_epoch() as epoch:
        next(epoch.records(chunk_size=10))  # reads a little; the writer fills the pipe
        feeder.stop()
        assert not feeder.running
    assert feeder.results[0].status is EpochStatus.STOPPED


def test_sharding_across_three_hosts(source_dir: Path, tmp_path: Path,
                                     start: Callable[..., PipeFeeder]) -> None:
    hosts = ["algo-1", "algo-2", "algo-3"]
    feeders = [start(source_dir, host, epochs=1, distribution="ShardedByS3Key",
                     host_index=i, host_count=3, record_wrapper="RecordIO")
               for i, host in enumerate(hosts)]
    shards = [list(reader(tmp_path, host, RecordWrapperType="RecordIO").records())
              for host in hosts]
    for feeder in feeders:
        assert feeder.wait(20)
    received = [record for shard in shards for record in shard]
    assert sorted(received) == sorted(OBJECTS.values())
    assert all(shards) and sum(map(len, shards)) == len(OBJECTS)


def test_seeded_shuffle_differs_by_epoch_and_repeats_by_seed(
        tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(30):
        (root / f"{i:02d}").write_bytes(f"{i:02d}".encode())
    orders: dict[str, list[bytes]] = {}
    for host in ("algo-1", "algo-2"):
        feeder = start(root, host, epochs=2, shuffle_seed=7, record_wrapper="RecordIO")
        channel = reader(tmp_path, host, RecordWrapperType="RecordIO")
        orders[host + ":0"] = list(channel.records())
        orders[host + ":1"] = list(channel.records())
        assert feeder.wait(20)
    assert orders["algo-1:0"] == orders["algo-2:0"]
    assert orders["algo-1:1"] == orders["algo-2:1"]
    assert orders["algo-1:0"] != orders["algo-1:1"]
    assert sorted(orders["algo-1:0"]) == sorted(orders["algo-1:1"])
    assert orders["algo-1:0"] != sorted(orders["algo-1:0"])


def test_gzip_objects_are_streamed_decompressed(
        tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    root = tmp_path / "gz"
    root.mkdir()
    (root / "a.gz").write_bytes(gzip.compress(b"first\nsecond\n"))
    (root / "b.gz").write_bytes(gzip.compress(b"third\n" * 20000))
    feeder = start(root, epochs=1, compression="Gzip")
    # CompressionType=Gzip in the config must not make the reader decompress again
    lines = list(reader(tmp_path, CompressionType="Gzip").records("lines"))
    assert lines == [b"first", b"second"] + [b"third"] * 20000
    assert feeder.wait(20)


def test_recordio_wrapping_reads_back_one_record_per_object(
        source_dir: Path, tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    (source_dir / "magic").write_bytes(b"\x0a\x23\xd7\xce" * 3)  # forces a split record
    feeder = start(source_dir, epochs=1, record_wrapper="RecordIO")
    records = list(reader(tmp_path, RecordWrapperType="RecordIO").records())
    expected = dict(OBJECTS, magic=b"\x0a\x23\xd7\xce" * 3)
    assert records == [expected[k] for k in sorted(expected)]
    assert feeder.wait(20)


def write_manifest(tmp_path: Path) -> Path:
    root = tmp_path / "manifest"
    (root / "images").mkdir(parents=True)
    (root / "images" / "cat.jpg").write_bytes(b"\xff\xd8cat-bytes")
    (tmp_path / "dog.jpg").write_bytes(b"\xff\xd8dog-bytes")
    lines = [
        {"source-ref": "images/cat.jpg", "label": "cat", "extra": 1},
        {"source-ref": f"file://{tmp_path / 'dog.jpg'}", "label": {"class": 2}},
    ]
    (root / "train.manifest").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return root


def test_augmented_manifest_with_recordio(tmp_path: Path,
                                          start: Callable[..., PipeFeeder]) -> None:
    root = write_manifest(tmp_path)
    # only the manifest is a listed object; the images are referenced
    source = tmp_path / "manifest-only"
    source.mkdir()
    (source / "train.manifest").write_text(
        (root / "train.manifest").read_text().replace("images/", str(root / "images") + "/"))
    feeder = start(source, epochs=1, record_wrapper="RecordIO",
                   attribute_names=["source-ref", "label"])
    records = list(reader(tmp_path, RecordWrapperType="RecordIO").records())
    assert records == [b"\xff\xd8cat-bytes", b"cat", b"\xff\xd8dog-bytes", b'{"class":2}']
    assert feeder.wait(20)
    assert feeder.results[0].objects == 2


def test_augmented_manifest_without_wrapping_concatenates(
        tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    root = write_manifest(tmp_path)
    (root / "images" / "cat.jpg").rename(tmp_path / "cat.jpg")
    (root / "images").rmdir()
    text = (root / "train.manifest").read_text().replace("images/cat.jpg",
                                                         str(tmp_path / "cat.jpg"))
    (root / "train.manifest").write_text(text)
    feeder = start(root, epochs=1, attribute_names=["label", "source-ref"])
    data = b"".join(reader(tmp_path).records())
    assert data == b"cat\xff\xd8cat-bytes" + b'{"class":2}\xff\xd8dog-bytes'
    assert feeder.wait(20)


def test_a_bad_manifest_line_fails_the_feeder_with_its_location(
        tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    (root / "m.manifest").write_text('{"source-ref": "x", "label": 1}\n{"label": 2}\n')
    feeder = start(root, epochs=1, attribute_names=["source-ref", "label"])
    with pytest.raises(FormatError, match="missing attribute 'source-ref'") as info:
        feeder.wait(20)
    assert (info.value.source, info.value.line) == ("m.manifest", 2)


def test_several_iterators_in_one_process_keep_the_epoch_count(
        source_dir: Path, tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    feeder = start(source_dir, epochs=4, record_wrapper="RecordIO")
    config = {"RecordWrapperType": "RecordIO"}
    assert len(list(reader(tmp_path, **config).records())) == len(OBJECTS)  # epoch 0
    results: list[int] = []

    def read_one_epoch() -> None:  # epoch 1, from another thread and another Channel
        results.append(len(list(reader(tmp_path, **config).records())))

    worker = threading.Thread(target=read_one_epoch)
    worker.start()
    worker.join(30)
    assert results == [len(OBJECTS)]
    channel = reader(tmp_path, **config)
    assert channel.next_epoch == 2
    for number in (2, 3):
        with channel.open_epoch() as epoch:
            assert epoch.number == number
            assert len(list(epoch.records())) == len(OBJECTS)
    assert feeder.wait(20)
    assert [r.status for r in feeder.results] == [EpochStatus.COMPLETE] * 4


USER_CODE = """
import sys
from pathlib import Path
from toolkit.channels import open_channel
from toolkit.layout import Layout

channel = open_channel("train", layout=Layout(Path(sys.argv[1])), open_timeout=20)
for _ in range(2):
    print(sum(1 for _ in channel.records()))
"""


def test_user_code_in_another_process(source_dir: Path, tmp_path: Path,
                                      start: Callable[..., PipeFeeder]) -> None:
    layout = Layout(tmp_path / "algo-1")
    layout.input_config_dir.mkdir(parents=True)
    layout.input_data_config_file.write_text(json.dumps({"train": {
        "TrainingInputMode": "Pipe", "RecordWrapperType": "RecordIO"}}))
    feeder = start(source_dir, epochs=2, record_wrapper="RecordIO")
    done = subprocess.run([sys.executable, "-c", USER_CODE, str(layout.root)],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == [str(len(OBJECTS))] * 2
    assert feeder.wait(20)


def test_large_objects_go_through_sendfile_byte_exact(
        tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    """Objects above SPLICE_MIN_SIZE are sent file -> pipe by the kernel; the wire format must
    still be exactly dmlc's, split records included, and gzip objects still decompressed."""
    root = tmp_path / "big"
    root.mkdir()
    size = SPLICE_MIN_SIZE + 6  # not a multiple of 4: padding follows the spliced payload
    plain = bytes(range(256)) * (size // 256) + b"tail!!"
    aligned = bytearray(plain)
    aligned[SPLICE_MIN_SIZE // 2:SPLICE_MIN_SIZE // 2 + 4] = recordio.MAGIC_BYTES
    unaligned = bytearray(plain)
    unaligned[1001:1005] = recordio.MAGIC_BYTES
    objects = {"a-plain": plain, "b-aligned": bytes(aligned), "c-unaligned": bytes(unaligned)}
    for key, data in objects.items():
        (root / key).write_bytes(data)
    feeder = start(root, epochs=2, record_wrapper="RecordIO")
    with reader(tmp_path).open_epoch() as epoch:  # epoch 0 read raw: the exact bytes sent
        wire = b"".join(epoch.records("raw"))
    assert wire == b"".join(recordio.frame_record(objects[k]) for k in sorted(objects))
    assert wire.count(recordio.MAGIC_BYTES) == 5  # three headers, one split: 1 + 2 extra
    records = list(reader(tmp_path, RecordWrapperType="RecordIO").records())
    assert records == [objects[k] for k in sorted(objects)]
    assert feeder.wait(20)
    assert [r.status for r in feeder.results] == [EpochStatus.COMPLETE] * 2


def test_large_gzip_objects_are_decompressed_not_spliced(
        tmp_path: Path, start: Callable[..., PipeFeeder]) -> None:
    root = tmp_path / "gzbig"
    root.mkdir()
    data = random.Random(7).randbytes(2 * SPLICE_MIN_SIZE)  # incompressible: a large .gz
    (root / "big.gz").write_bytes(gzip.compress(data))
    feeder = start(root, epochs=1, compression="Gzip")
    assert b"".join(reader(tmp_path).records("raw")) == data
    assert feeder.wait(20)
