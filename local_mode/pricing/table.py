"""The price table: on-demand prices per instance type, use and region, and ML storage.

A table is a JSON file (``prices.json`` in this package is the one optml ships; a user's own,
named by ``OPTML_LOCAL_PRICES_FILE``, is merged over it entry by entry)::

    {
      "format_version": 1,
      "version": "2026.12.1", "date": "2026-12-03", "currency": "USD",
      "source": "where the figures come from",
      "default_region": "us-east-1",
      "spot_discount_default": 0.7,
      "regions": {
        "us-east-1": {
          "training":   {"ml.m5.large": 0.115, ...},   USD per instance-hour
          "hosting":    {...},                          real-time inference
          "transform":  {...},                          batch transform
          "processing": {...},
          "storage_gb_month": 0.14,                     ML storage, USD per GB-month
          "spot_discount": {"ml.p3.2xlarge": 0.7}       managed spot saving, 0 <= d < 1
        },
        "us-west-2": {"same_as": "us-east-1"}           every price of us-east-1 it lacks
      }
    }

Only ``format_version`` and ``regions`` are required, so an override can be a few lines.
Unknown members are refused (a misspelt ``"trainng"`` would otherwise be silently ignored), and
so is every value of the wrong type or range: one :class:`PriceTableError` naming the file and
the member. Prices are kept as :class:`~decimal.Decimal` exactly as written, so a cost is the
product of the figures in the file, not of their binary approximations.

Parsing is pure (:func:`parse_table` on the decoded JSON); reading files is :func:`read_table`
and :func:`load_prices` (the packaged table, then the override).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from toolkit.errors import ConfigError

FORMAT_VERSION = 1
"""The table format this optml reads."""
USAGES = ("training", "hosting", "transform", "processing")
"""What an instance is priced for: training jobs, real-time endpoints, batch transform jobs and
processing jobs (the service prices some types differently per use, and offers some types for
some uses only)."""
USAGE_WORDS = {"training": "training", "hosting": "real-time inference (hosting)",
               "transform": "batch transform", "processing": "processing"}
LOCAL_TYPES = frozenset({"local", "local_gpu"})
"""Instance types that run on this machine and have no service price."""
PACKAGED = "prices.json"
"""The packaged table's name in this package."""

_TOP = {"format_version", "version", "date", "currency", "source", "notes", "default_region",
        "spot_discount_default", "regions"}
_REGION = {*USAGES, "storage_gb_month", "spot_discount", "same_as"}
_REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9-]+")


class PriceTableError(ConfigError):
    """A price table file that cannot be used: ``<file>: field '<member>': <what is wrong>``."""


@dataclass(frozen=True)
class Quoted:
    """One figure of a table and the table it came from."""

    value: Decimal
    origin: str


@dataclass(frozen=True)
class RegionTable:
    """One region's figures as one file gives them."""

    instances: Mapping[str, Mapping[str, Quoted]]
    """usage -> instance type -> USD per instance-hour."""
    storage_gb_month: Quoted | None = None
    spot_discount: Mapping[str, Quoted] = field(default_factory=dict)
    same_as: str | None = None


@dataclass(frozen=True)
class TableFile:
    """One price table file, checked (:func:`parse_table`)."""

    origin: str
    """How it is named in messages and results: its path, or ``packaged``."""
    regions: Mapping[str, RegionTable]
    version: str | None = None
    date: str | None = None
    currency: str = "USD"
    source: str | None = None
    notes: str | None = None
    default_region: str | None = None
    spot_discount_default: Quoted | None = None


@dataclass(frozen=True)
class Missing:
    """No figure for what was asked, and why (said to the user instead of a cost)."""

    reason: str


@dataclass(frozen=True)
class Price:
    """A figure found: ``value`` USD per instance-hour (or per GB-month for storage)."""

    value: Decimal
    origin: str
    """Which table it came from (``packaged prices.json 2026.12.1 of 2026-12-03`` or the
    override file's path)."""
    region: str
    """The region whose figure it is (``us-west-2`` even when listed ``same_as`` another)."""


# -- parsing -------------------------------------------------------------------------------------
def _fail(origin: str, member: str | None, message: str) -> PriceTableError:
    return PriceTableError(origin, message, field=member)


def _object(origin: str, member: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(origin, member, f"must be a JSON object, got {_json_type(value)}")
    return value


def _text(origin: str, member: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(origin, member, f"must be a non-empty string, got {_shown(value)}")
    return value


def _amount(origin: str, member: str, value: Any, *, below_one: bool = False) -> Quoted:
    """A price (a number >= 0) or a discount (0 <= d < 1), exactly as written."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise _fail(origin, member, f"must be a number, got {_shown(value)}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise _fail(origin, member, f"must be a number >= 0, got {_shown(value)}")
    if below_one and amount >= 1:
        raise _fail(origin, member, f"must be a fraction from 0 to below 1 (0.7 is a 70% "
                                    f"saving), got {_shown(value)}")
    return Quoted(amount, origin)


def _unknown_members(origin: str, where: str, given: Mapping[str, Any],
                     known: set[str]) -> None:
    extra = sorted(set(given) - known)
    if extra:
        member = f"{where}{extra[0]}" if where else extra[0]
        raise _fail(origin, member, f"unknown member (a table takes {', '.join(sorted(known))})")


def _types(origin: str, member: str, value: Any, *,
           below_one: bool = False) -> dict[str, Quoted]:
    entries = _object(origin, member, value)
    found = {}
    for instance_type, amount in entries.items():
        where = f"{member}[{json.dumps(instance_type)}]"
        if not _INSTANCE_TYPE.fullmatch(instance_type):
            raise _fail(origin, where, "is not an instance type name such as ml.m5.large")
        found[instance_type] = _amount(origin, where, amount, below_one=below_one)
    return found


def _region(origin: str, name: str, value: Any) -> RegionTable:
    where = f"regions[{json.dumps(name)}]"
    if not _REGION_NAME.fullmatch(name):
        raise _fail(origin, where, "is not a region name such as us-east-1")
    body = _object(origin, where, value)
    _unknown_members(origin, f"{where}.", body, _REGION)
    instances = {usage: _types(origin, f"{where}.{usage}", body[usage])
                 for usage in USAGES if usage in body}
    storage = body.get("storage_gb_month")
    same_as = body.get("same_as")
    if same_as is not None:
        same_as = _text(origin, f"{where}.same_as", same_as)
        if same_as == name:
            raise _fail(origin, f"{where}.same_as", "names the region itself")
    return RegionTable(
        instances=instances,
        storage_gb_month=None if storage is None else
        _amount(origin, f"{where}.storage_gb_month", storage),
        spot_discount=_types(origin, f"{where}.spot_discount", body["spot_discount"],
                             below_one=True) if "spot_discount" in body else {},
        same_as=same_as)


def parse_table(data: Any, origin: str) -> TableFile:
    """Check a decoded table (numbers decoded as ``int`` or :class:`~decimal.Decimal`, as
    :func:`decode` does) and return it; :class:`PriceTableError` naming ``origin`` and the first
    member that is wrong."""
    if not isinstance(data, dict):
        raise _fail(origin, None, f"must be a JSON object (a price table), got "
                                  f"{_json_type(data)}")
    body: Mapping[str, Any] = data
    _unknown_members(origin, "", body, _TOP)
    if "format_version" not in body:
        raise _fail(origin, "format_version", f"is missing (write \"format_version\": "
                                              f"{FORMAT_VERSION})")
    version = body["format_version"]
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise _fail(origin, "format_version", f"must be {FORMAT_VERSION} (the table format this "
                                              f"optml reads), got {_shown(version)}")
    if "regions" not in body:
        raise _fail(origin, "regions", "is missing (an object of region name -> prices)")
    regions = {name: _region(origin, name, value)
               for name, value in _object(origin, "regions", body["regions"]).items()}
    currency = _text(origin, "currency", body.get("currency", "USD"))
    if currency != "USD":
        raise _fail(origin, "currency", f"must be USD (the packaged table's), got "
                                        f"{_shown(currency)}")
    optional = {member: _text(origin, member, body[member]) if member in body else None
                for member in ("version", "date", "source", "notes", "default_region")}
    if optional["default_region"] is not None and \
            not _REGION_NAME.fullmatch(optional["default_region"]):
        raise _fail(origin, "default_region", "is not a region name such as us-east-1")
    spot = body.get("spot_discount_default")
    return TableFile(
        origin=origin, regions=regions, currency=currency,
        version=optional["version"], date=optional["date"], source=optional["source"],
        notes=optional["notes"], default_region=optional["default_region"],
        spot_discount_default=None if spot is None else
        _amount(origin, "spot_discount_default", spot, below_one=True))


def decode(text: str | bytes, origin: str) -> Any:
    """JSON text with every number as an exact :class:`~decimal.Decimal` (integers as ``int``);
    NaN and infinities, which JSON does not have, refused."""

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_float=Decimal, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise _fail(origin, None, f"not valid JSON: {exc.msg} (line {exc.lineno}, column "
                                  f"{exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # a constant, bad UTF-8, absurd nesting
        raise _fail(origin, None, f"not valid JSON: {exc}") from None


def read_table(path: Path) -> TableFile:
    """The table in the file at ``path`` (a user's override)."""
    origin = str(path)
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise _fail(origin, None, f"cannot be read: {exc.strerror or exc}") from None
    return parse_table(decode(text, origin), origin)


def packaged_table() -> TableFile:
    """The table optml ships (``local_mode/pricing/prices.json``)."""
    data = decode(resources.files(__package__).joinpath(PACKAGED).read_bytes(), PACKAGED)
    origin = f"packaged {PACKAGED}"
    if isinstance(data, dict) and isinstance(data.get("version"), str) and \
            isinstance(data.get("date"), str):
        origin += f" {data['version']} of {data['date']}"
    return parse_table(data, origin)


# -- the merged table ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceTable:
    """The packaged table with the user's merged over it, entry by entry."""

    packaged: TableFile
    override: TableFile | None = None

    @property
    def files(self) -> tuple[TableFile, ...]:
        return (self.packaged,) if self.override is None else (self.packaged, self.override)

    @property
    def default_region(self) -> str:
        for table in reversed(self.files):
            if table.default_region:
                return table.default_region
        return "us-east-1"

    @property
    def regions(self) -> list[str]:
        """Every region the table has figures for, sorted."""
        return sorted({name for table in self.files for name in table.regions})

    def _region_chain(self, region: str) -> list[tuple[str, RegionTable]]:
        """Where ``region``'s figures are looked up, in order: the override's entry, the
        packaged entry, then (if either says ``same_as``) the same for that region."""
        chain = [(region, table.regions[region]) for table in reversed(self.files)
                 if region in table.regions]
        same_as = next((entry.same_as for _, entry in chain if entry.same_as), None)
        if same_as is not None:
            chain += [(same_as, table.regions[same_as]) for table in reversed(self.files)
                      if same_as in table.regions]
        return chain

    def instance_price(self, region: str, usage: str, instance_type: str) -> Price | Missing:
        """USD per instance-hour of ``instance_type`` used for ``usage`` in ``region``."""
        if usage not in USAGES:
            raise ValueError(f"unknown usage {usage!r}")
        if instance_type in LOCAL_TYPES:
            return Missing(f"instance type {instance_type!r} runs on this machine and has no "
                           f"service price")
        chain = self._region_chain(region)
        if not chain:
            return self._no_region(region)
        for _, entry in chain:
            quoted = entry.instances.get(usage, {}).get(instance_type)
            if quoted is not None:
                return Price(quoted.value, quoted.origin, region)
        return Missing(f"the price table has no {USAGE_WORDS[usage]} price for "
                       f"{instance_type} in {region}")

    def storage_price(self, region: str) -> Price | Missing:
        """USD per GB-month of ML storage in ``region``."""
        chain = self._region_chain(region)
        if not chain:
            return self._no_region(region)
        for _, entry in chain:
            if entry.storage_gb_month is not None:
                quoted = entry.storage_gb_month
                return Price(quoted.value, quoted.origin, region)
        return Missing(f"the price table has no ML storage price for {region}")

    def spot_discount(self, region: str, instance_type: str) -> Quoted:
        """The managed spot saving of ``instance_type`` in ``region``: the region's figure for
        the type, else the table's ``spot_discount_default``, else 0 (no saving claimed)."""
        for _, entry in self._region_chain(region):
            quoted = entry.spot_discount.get(instance_type)
            if quoted is not None:
                return quoted
        for table in reversed(self.files):
            if table.spot_discount_default is not None:
                return table.spot_discount_default
        return Quoted(Decimal(0), "no spot discount in the price table")

    def _no_region(self, region: str) -> Missing:
        return Missing(f"the price table has no prices for region {region} (it has "
                       f"{', '.join(self.regions)}; --region or OPTML_LOCAL_PRICES_FILE)")

    def describe(self) -> dict[str, Any]:
        """What the table is, for a result: version, date, source of each file."""
        described: dict[str, Any] = {
            "Version": self.packaged.version, "Date": self.packaged.date,
            "Source": self.packaged.source, "Currency": self.packaged.currency,
            "DefaultRegion": self.default_region, "Regions": self.regions}
        if self.override is not None:
            described["Override"] = {"File": self.override.origin,
                                     "Version": self.override.version,
                                     "Date": self.override.date,
                                     "Source": self.override.source}
        return described


def check_same_as(table: PriceTable) -> None:
    """Every ``same_as`` of the merged table names a region that has figures of its own."""
    for file in table.files:
        for name, entry in file.regions.items():
            if entry.same_as is None:
                continue
            target = [t.regions[entry.same_as] for t in table.files
                      if entry.same_as in t.regions]
            member = f"regions[{json.dumps(name)}].same_as"
            if not target:
                raise _fail(file.origin, member, f"names {entry.same_as}, which no price "
                                                 f"table has")
            if any(t.same_as for t in target):
                raise _fail(file.origin, member, f"names {entry.same_as}, which is itself "
                                                 f"same_as another region")


def load_prices(override: Path | None = None) -> PriceTable:
    """The packaged table, with the one at ``override`` (``settings.local.prices_file``)
    merged over it; :class:`PriceTableError` for an override that cannot be used."""
    table = PriceTable(packaged_table(), None if override is None else read_table(override))
    check_same_as(table)
    return table


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def _shown(value: Any) -> str:
    if isinstance(value, (str, Decimal, int)) and not isinstance(value, bool):
        return json.dumps(value) if isinstance(value, str) else str(value)
    return _json_type(value)


__all__ = ["FORMAT_VERSION", "LOCAL_TYPES", "PACKAGED", "USAGES", "USAGE_WORDS", "Missing",
           "Price", "PriceTable", "PriceTableError", "Quoted", "RegionTable", "TableFile",
           "check_same_as", "decode", "load_prices", "packaged_table", "parse_table",
           "read_table"]
