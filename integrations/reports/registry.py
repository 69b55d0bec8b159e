"""The report registry: each report has a name, columns, a parameter schema, a builder that
computes its rows (in SQL aggregates) and a chart description."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import marshmallow as ma

from cairn.api import Schema
from cairn.db import utcnow
from cairn.errors import Invalid, NotFound


@dataclass(frozen=True)
class ChartData:
    """What to draw: category labels, one or more named series of numbers, and axis labels."""

    labels: list[str]
    series: dict[str, list[float]]
    value_label: str = "count"
    horizontal: bool = True
    stacked: bool = False


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    columns: list[tuple[str, str]]
    build: Callable[[dict], list[dict]]
    chart: Callable[[list[dict], dict], ChartData]
    params: type[Schema]
    formats: tuple[str, ...] = ("json", "csv", "svg", "png")
    # For reports whose rows are many (the register): ``chart_source(params) -> (rows, row_count)``
    # computes only what the chart draws, so a chart never builds every row.
    chart_source: Callable[[dict], tuple[list[dict], int]] | None = None


@dataclass
class ReportResult:
    report: Report
    params: dict
    rows: list[dict]
    generated_at: datetime = field(default_factory=utcnow)
    # How many rows the report has, when ``rows`` holds a chart's aggregate instead of them.
    row_count: int | None = None

    @property
    def total(self) -> int:
        return len(self.rows) if self.row_count is None else self.row_count

    @property
    def as_of(self) -> date:
        return self.params.get("as_of") or self.generated_at.date()


REPORTS: dict[str, Report] = {}


class NoParams(Schema):
    pass


def register(
    name: str,
    title: str,
    description: str,
    columns: list[tuple[str, str]],
    chart: Callable[[list[dict], dict], ChartData],
    params: type[Schema] = NoParams,
    formats: tuple[str, ...] = ("json", "csv", "svg", "png"),
    chart_source: Callable[[dict], tuple[list[dict], int]] | None = None,
):
    """Decorator: register ``build(params) -> rows`` under ``name``."""

    def decorate(build):
        REPORTS[name] = Report(name, title, description, columns, build, chart, params, formats, chart_source)
        return build

    return decorate


def get_report(name: str) -> Report:
    _load()
    report = REPORTS.get(name)
    if report is None:
        raise NotFound(f"No report named {name!r}; GET /api/v1/reports lists them.", known=sorted(REPORTS))
    return report


def all_reports() -> list[Report]:
    _load()
    return [REPORTS[name] for name in sorted(REPORTS)]


def parse_params(report: Report, raw: dict[str, Any]) -> dict:
    """Validate query-string parameters against the report's schema (422 naming the field)."""
    try:
        return report.params().load(raw)
    except ma.ValidationError as exc:
        raise Invalid("Some report parameters are invalid.", errors=exc.messages)


def run(name: str, raw_params: dict[str, Any] | None = None) -> ReportResult:
    """Compute a report by name with its (unvalidated) parameters."""
    report = get_report(name)
    params = parse_params(report, raw_params or {})
    return ReportResult(report, params, report.build(params))


def run_for_chart(name: str, raw_params: dict[str, Any] | None = None) -> ReportResult:
    """What a report's chart needs: its rows, or the aggregate its ``chart_source`` computes."""
    report = get_report(name)
    params = parse_params(report, raw_params or {})
    if report.chart_source is None:
        return ReportResult(report, params, report.build(params))
    rows, count = report.chart_source(params)
    return ReportResult(report, params, rows, row_count=count)


def _load() -> None:
    # Importing the modules registers their reports.
    from integrations.reports import library, licences  # noqa: F401
