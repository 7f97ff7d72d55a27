"""The price table: the packaged file, a user's override merged over it, and every way an override
can be wrong (one PriceTableError naming the file and member)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.pricing.table import (
    FORMAT_VERSION,
    USAGES,
    Missing,
    Price,
    PriceTableError,
    decode,
    load_prices,
    packaged_table,
    parse_table,
    read_table,
)
from toolkit.errors import ConfigError

ENUMS = {"training": "TrainingInstanceType", "hosting": "ProductionVariantInstanceType",
         "transform": "TransformInstanceType", "processing": "ProcessingInstanceType"}
FAMILIES = ("ml.t2.", "ml.t3.", "ml.m5.", "ml.m6i.", "ml.c5.", "ml.c6i.", "ml.r5.", "ml.g4dn.",
            "ml.g5.", "ml.p3.")


def write(tmp_path: Path, body: Any, name: str = "prices.json") -> Path:
    path = tmp_path / name
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


# -- the packaged table --------------------------------------------------------------------------
def test_the_packaged_table_says_what_it_is() -> None:
    table = packaged_table()
    assert table.version and table.date and re.fullmatch(r"\d{4}-\d{2}-\d{2}", table.date)
    assert table.currency == "USD" and table.default_region == "us-east-1"
    assert table.source is not None and "https://aws.amazon.com/sagemaker/pricing/" in \
        table.source and "check current prices" in table.source.lower()
    assert table.spot_discount_default is not None
    assert Decimal(0) < table.spot_discount_default.value < 1


def test_the_packaged_table_prices_every_common_type_for_each_use_it_is_offered_for() -> None:
    """Every type of the asked-for families that botocore's model accepts for a use has a
    us-east-1 price for that use, and no use lists a type the service does not offer for it."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    region = packaged_table().regions["us-east-1"]
    for usage in USAGES:
        offered = {t for t in model.shape_for(ENUMS[usage]).enum if t.startswith(FAMILIES)}
        listed = set(region.instances[usage])
        assert listed <= set(model.shape_for(ENUMS[usage]).enum), (usage, listed - offered)
        assert offered <= listed, (usage, sorted(offered - listed))
        assert all(Decimal("0.01") < q.value < 100 for q in region.instances[usage].values())
    assert region.storage_gb_month is not None and region.storage_gb_month.value > 0


def test_prices_are_the_figures_written_in_the_file() -> None:
    table = load_prices()
    price = table.instance_price("us-east-1", "training", "ml.m5.large")
    assert isinstance(price, Price)
    assert price.value == Decimal("0.115") and price.region == "us-east-1"
    assert price.origin.startswith("packaged prices.json ")
    # a region listed same_as us-east-1 has its figures, named as itself
    west = table.instance_price("us-west-2", "hosting", "ml.g5.xlarge")
    assert isinstance(west, Price) and west.region == "us-west-2"
    assert west.value == table.packaged.regions["us-east-1"].instances["hosting"][
        "ml.g5.xlarge"].value


@pytest.mark.parametrize(("region", "usage", "instance_type", "reason"), [
    ("us-east-1", "training", "local", "runs on this machine"),
    ("us-east-1", "hosting", "local_gpu", "runs on this machine"),
    ("us-east-1", "training", "ml.t2.medium", "no training price for ml.t2.medium in us-east-1"),
    ("us-east-1", "hosting", "ml.zz9.huge", "no real-time inference (hosting) price"),
    ("eu-west-9", "training", "ml.m5.large", "no prices for region eu-west-9"),
])
def test_what_the_table_lacks_is_missing_with_the_reason(region: str, usage: str,
                                                         instance_type: str,
                                                         reason: str) -> None:
    found = load_prices().instance_price(region, usage, instance_type)
    assert isinstance(found, Missing) and reason in found.reason


# -- overrides -----------------------------------------------------------------------------------
def test_an_override_is_merged_over_the_packaged_table_entry_by_entry(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "format_version": 1, "version": "mine-3", "date": "2027-01-01", "source": "our invoice",
        "spot_discount_default": 0.5,
        "regions": {
            "us-east-1": {"training": {"ml.m5.large": 0.2, "ml.trn1.2xlarge": 1.5},
                          "spot_discount": {"ml.p3.2xlarge": 0.65}},
            "eu-west-1": {"training": {"ml.m5.large": 0.128}, "storage_gb_month": 0.154},
            "us-west-2": {"hosting": {"ml.m5.large": 0.3}},
        }})
    table = load_prices(path)
    mine = table.instance_price("us-east-1", "training", "ml.m5.large")
    assert isinstance(mine, Price) and mine.value == Decimal("0.2") and mine.origin == str(path)
    kept = table.instance_price("us-east-1", "training", "ml.m5.xlarge")
    assert isinstance(kept, Price) and kept.origin.startswith("packaged")
    new = table.instance_price("us-east-1", "training", "ml.trn1.2xlarge")
    assert isinstance(new, Price) and new.value == Decimal("1.5")
    eu = table.storage_price("eu-west-1")
    assert isinstance(eu, Price) and eu.value == Decimal("0.154")
    # the packaged same_as of us-west-2 still gives what the override does not
    west = table.instance_price("us-west-2", "hosting", "ml.m5.large")
    assert isinstance(west, Price) and west.value == Decimal("0.3")
    west_other = table.instance_price("us-west-2", "hosting", "ml.c5.large")
    assert isinstance(west_other, Price) and west_other.origin.startswith("packaged")
    assert table.spot_discount("us-east-1", "ml.p3.2xlarge").value == Decimal("0.65")
    assert table.spot_discount("us-east-1", "ml.g5.xlarge").value == Decimal("0.5")
    assert "eu-west-1" in table.regions
    assert table.describe()["Override"] == {"File": str(path), "Version": "mine-3",
                                            "Date": "2027-01-01", "Source": "our invoice"}


def test_the_smallest_override(tmp_path: Path) -> None:
    path = write(tmp_path, {"format_version": 1,
                            "regions": {"ap-south-1": {"hosting": {"ml.m5.large": 0.1}}}})
    table = load_prices(path)
    assert table.default_region == "us-east-1"
    assert isinstance(table.instance_price("ap-south-1", "hosting", "ml.m5.large"), Price)
    assert isinstance(table.storage_price("ap-south-1"), Missing)


BAD: list[tuple[Any, str]] = [
    ("{", "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
    ('{"format_version": 1, "regions": {"us-east-1": {"training": {"ml.m5.large": NaN}}}}',
     "not valid JSON: NaN is not a JSON number"),
    ([], "must be a JSON object (a price table), got an array"),
    ({"regions": {}}, "field 'format_version': is missing"),
    ({"format_version": 2, "regions": {}}, "field 'format_version': must be 1"),
    ({"format_version": True, "regions": {}}, "field 'format_version': must be 1"),
    ({"format_version": 1}, "field 'regions': is missing"),
    ({"format_version": 1, "regions": [], }, "field 'regions': must be a JSON object, got an "
                                             "array"),
    ({"format_version": 1, "regions": {}, "region": {}}, "field 'region': unknown member"),
    ({"format_version": 1, "regions": {"us-east-1": {"trainng": {}}}},
     "field 'regions[\"us-east-1\"].trainng': unknown member"),
    ({"format_version": 1, "regions": {"US East": {}}},
     "field 'regions[\"US East\"]': is not a region name"),
    ({"format_version": 1, "regions": {"us-east-1": {"training": {"m5.large": 1}}}},
     "field 'regions[\"us-east-1\"].training[\"m5.large\"]': is not an instance type name"),
    ({"format_version": 1, "regions": {"us-east-1": {"training": {"ml.m5.large": "0.1"}}}},
     "field 'regions[\"us-east-1\"].training[\"ml.m5.large\"]': must be a number, got \"0.1\""),
    ({"format_version": 1, "regions": {"us-east-1": {"training": {"ml.m5.large": -1}}}},
     "field 'regions[\"us-east-1\"].training[\"ml.m5.large\"]': must be a number >= 0, got -1"),
    ({"format_version": 1, "regions": {"us-east-1": {"hosting": {"ml.m5.large": None}}}},
     "must be a number, got null"),
    ({"format_version": 1, "regions": {"us-east-1": {"storage_gb_month": True}}},
     "field 'regions[\"us-east-1\"].storage_gb_month': must be a number, got true/false"),
    ({"format_version": 1, "regions": {"us-east-1": {"spot_discount": {"ml.p3.2xlarge": 1}}}},
     "spot_discount[\"ml.p3.2xlarge\"]': must be a fraction from 0 to below 1"),
    ({"format_version": 1, "spot_discount_default": 70, "regions": {}},
     "field 'spot_discount_default': must be a fraction"),
    ({"format_version": 1, "currency": "EUR", "regions": {}}, "field 'currency': must be USD"),
    ({"format_version": 1, "date": 20270101, "regions": {}},
     "field 'date': must be a non-empty string, got 20270101"),
    ({"format_version": 1, "regions": {"eu-west-1": {"same_as": "eu-west-1"}}},
     "same_as': names the region itself"),
    ({"format_version": 1, "regions": {"eu-west-1": {"same_as": "eu-north-9"}}},
     "same_as': names eu-north-9, which no price table has"),
    ({"format_version": 1, "regions": {"eu-west-1": {"same_as": "us-west-2"}}},
     "same_as': names us-west-2, which is itself same_as another region"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_a_malformed_override_is_one_error_naming_the_file_and_member(
        tmp_path: Path, body: Any, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(PriceTableError) as raised:
        load_prices(path)
    text = str(raised.value)
    assert text.startswith(f"{path}: ") and message in text, text
    assert "\n" not in text
    assert isinstance(raised.value, ConfigError)


def test_an_unreadable_override(tmp_path: Path) -> None:
    with pytest.raises(PriceTableError, match=r": cannot be read: Is a directory$"):
        read_table(tmp_path)


# -- the parser under arbitrary input ------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) |
    st.decimals(allow_nan=False, allow_infinity=False, places=4) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) |
    st.dictionaries(st.sampled_from(["training", "hosting", "us-east-1", "ml.m5.large",
                                     "same_as", "storage_gb_month", "regions",
                                     "format_version", "x"]) | st.text(max_size=8),
                    inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_parser_takes_any_json_and_either_reads_it_or_names_what_is_wrong(
        data: Any) -> None:
    """Never anything but a table or a PriceTableError whose message names the origin."""
    try:
        table = parse_table(data, "f.json")
    except PriceTableError as exc:
        assert str(exc).startswith("f.json")
        return
    assert table.origin == "f.json"


prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False)
instance_types = st.from_regex(r"ml\.[a-z][a-z0-9]{1,4}\.(x?large|[0-9]{1,2}xlarge|medium)",
                               fullmatch=True)
regions = st.from_regex(r"(us|eu|ap)-(east|west|north|south)-[1-3]", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(regions, st.dictionaries(
    st.sampled_from(USAGES), st.dictionaries(instance_types, prices, max_size=4), max_size=4),
    max_size=3))
def test_every_valid_table_reads_back_its_figures_exactly(
        body: dict[str, dict[str, dict[str, Decimal]]]) -> None:
    text = to_json({"format_version": FORMAT_VERSION, "regions": body})
    table = parse_table(decode(text, "f.json"), "f.json")
    for region, usages in body.items():
        for usage, entries in usages.items():
            for instance_type, price in entries.items():
                quoted = table.regions[region].instances[usage][instance_type]
                assert quoted.value == price and quoted.origin == "f.json"


def to_json(value: Any) -> str:
    """JSON text with each Decimal written as its exact digits (str(Decimal) is a JSON number)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)
