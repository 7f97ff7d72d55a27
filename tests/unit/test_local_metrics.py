"""MetricDefinitions applied to log lines."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.errors import ValidationException
from local_mode.training.metrics import MetricExtractor, read_series
from local_mode.training.spec import MetricDefinition

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_series_and_final_values(tmp_path: Path) -> None:
    extractor = MetricExtractor([MetricDefinition("loss", r"loss=([-0-9.e]+)"),
                                 MetricDefinition("epoch", r"epoch \d+")], tmp_path / "m.jsonl")
    for line in ["loss=0.5", "noise", "loss=nan", "loss=inf", "loss=abc", "loss=-1e-3",
                 "epoch 3 done"]:
        extractor.feed(line, WHEN)
    extractor.close()
    series = read_series(tmp_path / "m.jsonl")
    assert [(p["MetricName"], p["Value"]) for p in series] == [("loss", 0.5), ("loss", -0.001)]
    assert extractor.final_metric_data() == [
        {"MetricName": "loss", "Value": -0.001, "Timestamp": WHEN}]


def test_no_definitions_write_nothing(tmp_path: Path) -> None:
    extractor = MetricExtractor([], tmp_path / "m.jsonl")
    extractor.feed("loss=1", WHEN)
    extractor.close()
    assert read_series(tmp_path / "m.jsonl") == []


def test_a_bad_regex_names_the_metric(tmp_path: Path) -> None:
    with pytest.raises(ValidationException, match="'broken'"):
        MetricExtractor([MetricDefinition("broken", "loss=(")], tmp_path / "m.jsonl")


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=20))
def test_every_printed_value_is_recovered(values: list[float]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "m.jsonl"
        extractor = MetricExtractor([MetricDefinition("v", r"v=(\S+)")], path)
        for value in values:
            extractor.feed(f"step v={value!r} end", WHEN)
        extractor.close()
        assert [p["Value"] for p in read_series(path)] == values
