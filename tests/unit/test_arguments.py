"""toolkit.training.arguments: hyperparameters → argv (optml's rules)."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.training.arguments import format_value, to_arguments
from toolkit.training.config import Hyperparameters


@pytest.mark.parametrize(("value", "text"), [
    (True, "True"),
    (False, "False"),
    (None, "None"),
    (0, "0"),
    (-3, "-3"),
    (10**30, "1000000000000000000000000000000"),
    (0.5, "0.5"),
    (1e-05, "1e-05"),
    (2.0, "2.0"),
    ([1, 2, 3], "[1,2,3]"),
    (["a b", True, None], '["a b",true,null]'),
    ({"k": [1, {"x": 0.1}]}, '{"k":[1,{"x":0.1}]}'),
    ({"ünï": "çødé"}, '{"ünï":"çødé"}'),
    ([], "[]"),
    ({}, "{}"),
])
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize("text", [
    "",
    "train.py",
    "two words",
    "  padded  ",
    "it's \"quoted\"",
    "$HOME `id` $(id) ; rm -rf / && | > <",
    "ünïcødé ✓ 日本語",
    '{"json": "in a string"}',
    "[1, 2]",
    "line\nbreak\ttab",
    "*.glob ?",
])
def test_strings_pass_unchanged_as_one_item(text: str) -> None:
    assert format_value(text) == text
    assert to_arguments({"value": text}) == ["--value", text]


def test_decoded_json_string_loses_only_the_json_quotes() -> None:
    # The SDK sends a string hyperparameter as "\"a b\""; the script gets a b, one argv item.
    hps = Hyperparameters.parse({"name": json.dumps("a b"), "nested": json.dumps('{"x": 1}')})
    assert to_arguments(hps.user) == ["--name", "a b", "--nested", '{"x": 1}']


def test_contract_example() -> None:
    assert to_arguments({"lr": 0.1, "layers": [1, 2]}) == ["--lr", "0.1", "--layers", "[1,2]"]


def test_order_is_kept_not_sorted() -> None:
    hps = {"zeta": 1, "alpha": 2, "mid": 3}
    assert to_arguments(hps) == ["--zeta", "1", "--alpha", "2", "--mid", "3"]


def test_names_are_kept_verbatim() -> None:
    assert to_arguments({"batch-size": 8, "learning_rate": 0.1, "Mixed.Case": "x"}) == [
        "--batch-size", "8", "--learning_rate", "0.1", "--Mixed.Case", "x"]


def test_one_hundred_entries() -> None:
    hps = {f"h{i:03d}": i for i in range(100)}
    argv = to_arguments(hps)
    assert len(argv) == 200
    assert argv[0::2] == [f"--h{i:03d}" for i in range(100)]
    assert argv[1::2] == [str(i) for i in range(100)]


def test_empty() -> None:
    assert to_arguments({}) == []


def test_from_hyperparameters_json_to_argv() -> None:
    raw = {"epochs": "10", "lr": "0.001", "use-cuda": "true", "dropout": "null",
           "layers": "[64, 32]", "optimizer": '"adam"', "note": "plain text", "sagemaker_program":
           '"train.py"'}
    assert to_arguments(Hyperparameters.parse(raw).user) == [
        "--epochs", "10", "--lr", "0.001", "--use-cuda", "True", "--dropout", "None",
        "--layers", "[64,32]", "--optimizer", "adam", "--note", "plain text"]


# -- round trip through argparse -------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_\-]{0,15}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                allow_infinity=False)
# argparse treats an item that starts with "-" (other than a plain negative number) as an
# option, so such strings are not part of this property; see docs/training.md.
safe_text = st.text().filter(lambda s: not s.startswith("-"))
json_like = st.recursive(scalars | st.text(),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                         max_leaves=8)
decoded = (st.none() | st.booleans() | st.integers(min_value=0) | safe_text
           | st.floats(min_value=0, allow_nan=False, allow_infinity=False)
           | st.lists(json_like, max_size=3) | st.dictionaries(st.text(max_size=5), json_like,
                                                                 max_size=3))
_ARGPARSE_NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(names, decoded, max_size=12))
def test_argparse_reads_back_every_value(hyperparameters: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    for index, name in enumerate(hyperparameters):
        parser.add_argument(f"--{name}", dest=f"d{index}", type=str)
    parsed = vars(parser.parse_args(to_arguments(hyperparameters)))
    for index, value in enumerate(hyperparameters.values()):
        assert parsed[f"d{index}"] == format_value(value)


@given(st.integers(max_value=-1) | st.floats(max_value=-0.0, allow_nan=False,
                                               allow_infinity=False))
def test_negative_numbers_reach_argparse_when_it_recognises_them(value: float) -> None:
    text = format_value(value)
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=str)
    if _ARGPARSE_NEGATIVE.match(text):
        assert parser.parse_args(["--x", text]).x == text
    # Every negative value can always be read in the --name=value form.
    assert parser.parse_args([f"--x={text}"]).x == text


@given(json_like)
def test_lists_and_dicts_are_compact_json_that_decodes_back(value: Any) -> None:
    container = [value]
    text = format_value(container)
    assert text == json.dumps(container, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(text) == container
