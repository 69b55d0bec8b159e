"""Depreciation and contract accrual against figures computed by hand."""

from datetime import date
from decimal import Decimal

import pytest

from cmdb.assets.depreciation import (
    Policy,
    book_value,
    contract_cost_to,
    depreciation_to,
    end_of_life,
    months_between,
    recurring_periods,
)

STRAIGHT_3Y = Policy("laptop", "straight_line", 3)
DECLINING_5Y = Policy("server", "declining_balance", 5, declining_factor=Decimal("2"))


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2024, 1, 15), date(2024, 1, 15), 0),
        (date(2024, 1, 15), date(2024, 2, 14), 0),
        (date(2024, 1, 15), date(2024, 2, 15), 1),
        (date(2024, 1, 31), date(2024, 2, 29), 0),
        (date(2024, 1, 31), date(2024, 3, 31), 2),
        (date(2023, 11, 1), date(2025, 2, 1), 15),
        (date(2024, 5, 1), date(2024, 1, 1), 0),
    ],
)
def test_months_between(start, end, months):
    assert months_between(start, end) == months


def test_straight_line_by_hand():
    # 1,200 over 36 months = 33.33.. a month; 18 months -> 600.00 left.
    cost, bought = Decimal("1200.00"), date(2023, 1, 15)
    assert book_value(cost, bought, STRAIGHT_3Y, date(2023, 1, 15)) == Decimal("1200.00")
    assert book_value(cost, bought, STRAIGHT_3Y, date(2023, 2, 15)) == Decimal("1166.67")
    assert book_value(cost, bought, STRAIGHT_3Y, date(2024, 7, 20)) == Decimal("600.00")
    assert depreciation_to(cost, bought, STRAIGHT_3Y, date(2024, 7, 20)) == Decimal("600.00")
    assert book_value(cost, bought, STRAIGHT_3Y, date(2026, 1, 15)) == Decimal("0.00")
    assert book_value(cost, bought, STRAIGHT_3Y, date(2030, 1, 1)) == Decimal("0.00")


def test_straight_line_with_salvage():
    # Salvage 10 % of 1,000 = 100; 900 over 60 months = 15 a month; 24 months -> 1000 - 360 = 640.
    policy = Policy("server", "straight_line", 5, salvage_percent=Decimal("10"))
    assert book_value(Decimal("1000"), date(2020, 3, 1), policy, date(2022, 3, 1)) == Decimal("640.00")
    assert book_value(Decimal("1000"), date(2020, 3, 1), policy, date(2026, 1, 1)) == Decimal("100.00")


def test_double_declining_balance_by_hand():
    # Rate 2/5 = 40 % a year: 1000 -> 600 after a year -> 360 after two -> 216 after three.
    cost, bought = Decimal("1000"), date(2021, 6, 1)
    assert book_value(cost, bought, DECLINING_5Y, date(2022, 6, 1)) == Decimal("600.00")
    assert book_value(cost, bought, DECLINING_5Y, date(2023, 6, 1)) == Decimal("360.00")
    assert book_value(cost, bought, DECLINING_5Y, date(2024, 6, 1)) == Decimal("216.00")
    # Half a year: 1000 * 0.6 ** 0.5 = 774.5966.. -> 774.60
    assert book_value(cost, bought, DECLINING_5Y, date(2021, 12, 1)) == Decimal("774.60")
    # Written down to salvage (0) when the useful life ends.
    assert book_value(cost, bought, DECLINING_5Y, date(2026, 6, 1)) == Decimal("0.00")


def test_unknown_cost_or_date_has_no_book_value():
    assert book_value(None, date(2024, 1, 1), STRAIGHT_3Y, date(2025, 1, 1)) is None
    assert book_value(Decimal("10"), None, STRAIGHT_3Y, date(2025, 1, 1)) is None


def test_end_of_life_handles_leap_day():
    assert end_of_life(date(2024, 2, 29), STRAIGHT_3Y) == date(2027, 2, 28)
    assert end_of_life(date(2024, 5, 2), STRAIGHT_3Y) == date(2027, 5, 2)


class _Contract:
    def __init__(self, cost, recurring, period, start, end=None):
        self.cost, self.recurring_cost, self.recurring_period = Decimal(cost), Decimal(recurring), period
        self.start_date, self.end_date = start, end


def test_contract_accrual_by_hand():
    monthly = _Contract("1000", "100", "monthly", date(2024, 1, 1), date(2024, 12, 31))
    assert contract_cost_to(monthly, date(2023, 12, 31)) == Decimal("0")
    assert contract_cost_to(monthly, date(2024, 1, 1)) == Decimal("1100.00")  # first month billed in advance
    assert contract_cost_to(monthly, date(2024, 7, 20)) == Decimal("1700.00")  # 7 months begun
    assert contract_cost_to(monthly, date(2030, 1, 1)) == Decimal("2200.00")  # 12 months, the whole term
    yearly = _Contract("0", "5000", "yearly", date(2022, 3, 1))
    assert recurring_periods(yearly.start_date, None, "yearly", date(2024, 2, 28)) == 2
    assert contract_cost_to(yearly, date(2024, 3, 1)) == Decimal("15000.00")
    quarterly = _Contract("0", "300", "quarterly", date(2024, 1, 1))
    assert contract_cost_to(quarterly, date(2024, 6, 30)) == Decimal("600.00")
