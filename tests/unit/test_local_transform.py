"""Transform building blocks: record splitting and batching, filters and joins, precedence."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.errors import ValidationException
from local_mode.transform.filters import DataProcessing, FilterError, apply_path, record_format
from local_mode.transform.records import MIB, RecordTooLarge, batches, encode, split_records
from local_mode.transform.spec import TransformJobSpec, check_limits

payloads = st.lists(st.binary(max_size=64), max_size=30)
lines = st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b
                                               and b != b""), max_size=30)


@given(lines)
def test_line_split_round_trips(records: list[bytes]) -> None:
    data = b"".join(encode(r, "Line") for r in records)
    assert list(split_records(io.BytesIO(data), "Line", "x")) == records


def test_line_split_keeps_a_last_line_without_newline() -> None:
    assert list(split_records(io.BytesIO(b"a\r\nb"), "Line", "x")) == [b"a", b"b"]


def _lines_one_at_a_time(data: bytes) -> list[bytes]:
    """Line records as iterating the file's lines gives them (what the block reader must
    match): trailing CR/LF stripped from a line with a newline, blank lines skipped."""
    out = []
    for line in io.BytesIO(data):
        stripped = line.rstrip(b"\r\n") if line.endswith(b"\n") else line
        if stripped or line not in (b"\n", b"\r\n"):
            out.append(stripped)
    return out


@given(data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"x" * 7]),
                     max_size=60).map(b"".join),
       block=st.integers(min_value=1, max_value=9))
def test_line_split_by_blocks_matches_line_by_line(data: bytes, block: int) -> None:
    """Blocks of any size (lines longer than a block, CRs and blank lines at block edges, a
    last line without newline) give the records reading line by line gives."""
    import local_mode.transform.records as module

    original = module.LINE_BLOCK
    module.LINE_BLOCK = block
    try:
        got = list(split_records(io.BytesIO(data), "Line", "x"))
    finally:
        module.LINE_BLOCK = original
    assert got == _lines_one_at_a_time(data)


@given(records=lines, limit_bytes=st.integers(min_value=41, max_value=200))
def test_line_batches_are_the_records_joined_by_newlines(records: list[bytes],
                                                         limit_bytes: int) -> None:
    import local_mode.transform.records as module

    original = module.MIB
    module.MIB = limit_bytes
    try:
        got = list(batches(records, "Line", "MultiRecord", 1))
    finally:
        module.MIB = original
    assert [r for b in got for r in b.records] == records
    assert all(b.body == b"".join(encode(r, "Line") for r in b.records) for b in got)
    assert all(len(b.body) <= limit_bytes for b in got)
    for first, second in itertools.pairwise(got):
        assert len(first.body) + len(second.records[0]) + 1 > limit_bytes


@pytest.mark.parametrize("split", ["RecordIO", "TFRecord"])
@given(records=payloads)
@settings(max_examples=50)
def test_binary_split_round_trips(split: str, records: list[bytes]) -> None:
    data = b"".join(encode(r, split) for r in records)
    assert list(split_records(io.BytesIO(data), split, "x")) == records


@given(records=payloads, limit_bytes=st.integers(min_value=80, max_value=400))
def test_multi_record_batches_are_whole_records_within_the_limit(records: list[bytes],
                                                                 limit_bytes: int) -> None:
    import local_mode.transform.records as module

    original = module.MIB
    module.MIB = limit_bytes  # one "MiB" = limit_bytes, so small inputs exercise the limit
    try:
        got = list(batches(records, "RecordIO", "MultiRecord", 1))
    finally:
        module.MIB = original
    assert [r for b in got for r in b.records] == records
    assert all(len(b.body) <= limit_bytes for b in got)
    assert [b.index for b in got] == list(range(len(got)))
    for first, second in itertools.pairwise(got):  # greedy: the next record would not have fitted
        assert len(first.body) + len(encode(second.records[0], "RecordIO")) > limit_bytes


def test_single_record_and_too_large() -> None:
    got = list(batches([b"a", b"b"], "Line", "SingleRecord", 6))
    assert [b.body for b in got] == [b"a\n", b"b\n"]
    with pytest.raises(RecordTooLarge, match="record 1 is"):
        list(batches([b"a", b"x" * MIB], "Line", "MultiRecord", 1))
    assert len(list(batches([b"x" * (2 * MIB)], "None", "MultiRecord", 0))) == 1


def test_filters_and_joins() -> None:
    csv = DataProcessing("$[1:]", "$[-1:]", True)
    assert csv.filter_input(b'7,"a,b",3', "csv") == b'"a,b",3'
    assert csv.finish(b"7,1,2", b"0.5", "csv", "csv") == b"0.5"
    obj = DataProcessing("$.x", "$", True)
    assert obj.finish(b'{"x":[1]}', b'{"s":1}', "json", "json") == \
        b'{"x":[1],"SageMakerOutput":{"s":1}}'
    assert obj.finish(b"[1,2]", b"not json", "json", "json") == b'[1,2,"not json"]'
    assert apply_path("$.a.b", {"a": {"b": 3}}) == 3
    with pytest.raises(FilterError, match="selects nothing"):
        apply_path("$.missing", {"a": 1})
    with pytest.raises(FilterError, match="not valid JSON"):
        obj.filter_input(b"{oops", "json")
    with pytest.raises(FilterError, match="text/csv or JSON"):
        record_format("application/x-recordio")
    assert record_format("text/csv; charset=utf-8") == "csv"
    assert not DataProcessing().active


def _request(**extra: object) -> dict[str, object]:
    return {"TransformJobName": "j", "ModelName": "m",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                "S3Uri": "file:///in"}}},
            "TransformOutput": {"S3OutputPath": "file:///out"},
            "TransformResources": {"InstanceType": "local", "InstanceCount": 1}, **extra}


def test_precedence_job_then_container_then_defaults() -> None:
    spec = TransformJobSpec.from_request(_request())
    assert spec.effective(None) == spec.effective({})
    defaults = spec.effective(None)
    assert (defaults.max_concurrent, defaults.max_payload_mb, defaults.strategy) == \
        (1, 6, "MultiRecord")
    container = spec.effective({"MaxConcurrentTransforms": 4, "MaxPayloadInMB": 20,
                                "BatchStrategy": "SINGLE_RECORD"})
    assert (container.max_concurrent, container.max_payload_mb, container.strategy) == \
        (4, 20, "SingleRecord")
    job = TransformJobSpec.from_request(_request(MaxConcurrentTransforms=2, MaxPayloadInMB=3,
                                                 BatchStrategy="MultiRecord"))
    chosen = job.effective({"MaxConcurrentTransforms": 4, "MaxPayloadInMB": 20,
                            "BatchStrategy": "SINGLE_RECORD"})
    assert (chosen.max_concurrent, chosen.max_payload_mb, chosen.strategy) == \
        (2, 3, "MultiRecord")
    with pytest.raises(ValidationException, match="must not exceed"):
        spec.effective({"MaxConcurrentTransforms": 11, "MaxPayloadInMB": 10})


def test_limits() -> None:
    check_limits(10, 10)
    check_limits(100, 0)
    with pytest.raises(ValidationException, match="at most 100"):
        check_limits(1, 101)
    with pytest.raises(ValidationException, match="SplitType Line or None"):
        TransformJobSpec.from_request(_request(
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                             "S3Uri": "file:///in"}},
                            "SplitType": "RecordIO"},
            DataProcessing={"JoinSource": "Input"}))
