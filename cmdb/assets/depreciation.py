"""Depreciation as pure functions: straight-line or declining balance, accrued per whole month.

Rules (documented in the API notes, checked by hand-computed tests):
- Depreciation starts on the purchase date and accrues once per whole month elapsed.
- Straight line: (cost - salvage) / (life * 12) per month, until the book value reaches salvage.
- Declining balance: the book value falls by ``factor / life`` a year, compounded monthly as
  ``cost * (1 - factor / life) ** (months / 12)``, never below salvage, and is written down to salvage
  when the useful life ends.
- Amounts are rounded to cents, half up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")

# Sensible defaults per class when no AssetClassPolicy row says otherwise.
DEFAULT_LIFE_YEARS = {
    "laptop": 3,
    "desktop": 4,
    "mobile_phone": 2,
    "tablet": 3,
    "printer": 5,
    "server": 5,
    "storage": 5,
    "network_switch": 7,
    "router": 7,
    "firewall": 5,
    "access_point": 5,
    "load_balancer": 5,
    "rack": 10,
    "pdu": 10,
    "ups": 7,
}
DEFAULT_AUDIT_DAYS = {"laptop": 365, "desktop": 365, "mobile_phone": 365, "tablet": 365, "server": 180}


@dataclass(frozen=True)
class Policy:
    ci_class: str
    depreciation_method: str = "straight_line"
    useful_life_years: int = 5
    salvage_percent: Decimal = Decimal("0")
    declining_factor: Decimal = Decimal("2")
    audit_interval_days: int = 365
    configured: bool = False


def default_policy(ci_class: str) -> Policy:
    return Policy(
        ci_class=ci_class,
        useful_life_years=DEFAULT_LIFE_YEARS.get(ci_class, 5),
        audit_interval_days=DEFAULT_AUDIT_DAYS.get(ci_class, 365),
    )


def months_between(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end`` (0 when end is before start or within the first month)."""
    if end <= start:
        return 0
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if end.day < start.day:
        months -= 1
    return max(months, 0)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def book_value(cost: Decimal | None, purchase_date: date | None, policy: Policy, at: date) -> Decimal | None:
    """The book value of an asset on ``at``; None when its cost or purchase date is unknown."""
    if cost is None or purchase_date is None:
        return None
    cost = Decimal(cost)
    salvage = _cents(cost * Decimal(policy.salvage_percent) / 100)
    life_months = max(policy.useful_life_years, 1) * 12
    months = months_between(purchase_date, at)
    if months >= life_months:
        return salvage
    if policy.depreciation_method == "declining_balance":
        rate = Decimal(policy.declining_factor) / Decimal(max(policy.useful_life_years, 1))
        if rate >= 1:
            return salvage if months > 0 else _cents(cost)
        remaining = float(1 - rate) ** (months / 12)
        value = _cents(cost * Decimal(str(remaining)))
        return max(value, salvage)
    per_month = (cost - salvage) / life_months
    return max(_cents(cost - per_month * months), salvage)


def depreciation_to(cost, purchase_date, policy: Policy, at: date) -> Decimal | None:
    value = book_value(cost, purchase_date, policy, at)
    return None if value is None else _cents(Decimal(cost) - value)


def end_of_life(purchase_date: date | None, policy: Policy) -> date | None:
    """The day the useful life ends."""
    if purchase_date is None:
        return None
    years = purchase_date.year + policy.useful_life_years
    try:
        return purchase_date.replace(year=years)
    except ValueError:  # 29 February
        return purchase_date.replace(year=years, day=28)


def recurring_periods(start: date, end: date | None, period: str | None, at: date) -> int:
    """How many billing periods of a contract have begun by ``at`` (billed in advance)."""
    from cmdb.assets.models import RECURRING_PERIODS

    if period is None or at < start:
        return 0
    last = min(at, end) if end is not None else at
    return months_between(start, last) // RECURRING_PERIODS[period] + 1


def contract_cost_to(contract, at: date) -> Decimal:
    """One-off cost plus the recurring periods begun by ``at``."""
    total = Decimal(contract.cost or 0)
    if contract.recurring_cost and contract.start_date <= at:
        total += Decimal(contract.recurring_cost) * recurring_periods(
            contract.start_date, contract.end_date, contract.recurring_period, at
        )
    elif contract.start_date > at:
        return Decimal("0")
    return _cents(total)
