"""Prices are the user's input, recorded in the results with their source and date: chipbench never looks
one up. From flags (`--price-per-hour`, `--price-per-kwh`) or a small TOML file keyed by machine id:

    [machine."cuda-nvidia-h100-80gb-hbm3-x8-intel-xeon-platinum-8480-112c"]
    price_per_hour = 98.32
    price_per_kwh = 0.12
    price_source = "on-demand list price, cloud X, us-east"
    price_date = "2026-11-01"
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chipbench.core.config import finite_number
from chipbench.core.errors import UsageError
from chipbench.core.fileio import load_toml

KEYS = {"price_per_hour", "price_per_kwh", "price_source", "price_date"}


@dataclass(frozen=True)
class Price:
    """What running the machine costs, as the user says."""

    per_hour_usd: float | None = None
    """One hour of the whole machine, in US dollars."""
    per_kwh_usd: float | None = None
    """One kilowatt-hour of energy, in US dollars (with a measured energy: the energy cost per sample)."""
    source: str | None = None
    """Where the figure comes from (a price list, a contract); recorded, never fetched."""
    date: str | None = None
    """When the figure held."""

    def __post_init__(self) -> None:
        for name in ("per_hour_usd", "per_kwh_usd"):
            v = getattr(self, name)
            if v is not None and not (finite_number(v) and v > 0):
                raise UsageError(f"price {name} must be a finite number of dollars > 0, got {v!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_file(path: Path) -> dict[str, Price]:
    """Machine id -> its price, from a TOML file; a one-line UsageError naming the file and key otherwise."""
    data = load_toml(Path(path), "--price-file")
    machines = data.get("machine")
    if set(data) - {"machine"} or not isinstance(machines, dict):
        raise UsageError(f'--price-file {path}: expected only [machine."<machine-id>"] tables')
    out = {}
    for mid, entry in machines.items():
        where = f'--price-file {path}: [machine."{mid}"]'
        if not isinstance(entry, dict):
            raise UsageError(f"{where} must be a table")
        unknown = set(entry) - KEYS
        if unknown:
            raise UsageError(
                f"{where} has unknown key {sorted(unknown)[0]!r}; keys: {', '.join(sorted(KEYS))}"
            )
        for key in ("price_source", "price_date"):
            if key in entry and not isinstance(entry[key], str):
                entry[key] = str(entry[key])  # a TOML date is a date: kept as written
        try:
            out[mid] = Price(entry.get("price_per_hour"), entry.get("price_per_kwh"),
                             entry.get("price_source"), entry.get("price_date"))  # fmt: skip
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return out


def resolve(
    machine_id: str,
    *,
    per_hour: float | None,
    per_kwh: float | None,
    file: Path | None,
    entries: dict[str, Price] | None,
) -> Price | None:
    """This machine's price: the flags over the file's entry; None when neither gives one."""
    base = (entries or {}).get(machine_id)
    if file is not None and base is None and per_hour is None and per_kwh is None:
        raise UsageError(
            f'--price-file {file} has no [machine."{machine_id}"] entry (this machine); add one, or pass '
            "--price-per-hour"
        )
    if base is None and per_hour is None and per_kwh is None:
        return None
    flags = [f for f, v in (("--price-per-hour", per_hour), ("--price-per-kwh", per_kwh)) if v is not None]
    if base is None:
        return Price(per_hour, per_kwh, "command line", None)
    source = base.source or "price file"
    if flags:  # say which figure came from where
        source = f"{' and '.join(flags)} from the command line; the rest: {source}"
    return Price(
        per_hour if per_hour is not None else base.per_hour_usd,
        per_kwh if per_kwh is not None else base.per_kwh_usd,
        source,
        base.date,
    )


def per_dollar(rate_per_s: float, price: Price) -> float | None:
    """Units per dollar of machine time at `rate_per_s` (None without an hourly price)."""
    if price.per_hour_usd is None:
        return None
    return rate_per_s * 3600.0 / price.per_hour_usd


def energy_usd_per_million(joules_per_unit: float, price: Price) -> float | None:
    """The energy cost of a million units, in dollars (None without a price per kWh)."""
    if price.per_kwh_usd is None or not math.isfinite(joules_per_unit):
        return None
    return joules_per_unit * 1e6 / 3.6e6 * price.per_kwh_usd
