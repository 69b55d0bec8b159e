"""Report output: CSV, XLSX and charts (matplotlib, Agg, rendered on the server, fixed size)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

from integrations.reports.registry import ChartData, ReportResult

# Charts are a fixed 1000 x 600 pixels (10 x 6 inches at 100 dpi) whatever the data: the largest
# series are drawn, the rest folded into 'other' by each report's chart function.
FIG_SIZE = (10, 6)
DPI = 100
MAX_LABEL = 40
MAX_BARS = 30
CSV_MAX_ROWS = 1_000_000


def cell(value):
    """A value as it goes into CSV/XLSX/JSON: lists joined, dates ISO, decimals exact."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def jsonable_row(row: dict, columns) -> dict:
    out = {}
    for key, _ in columns:
        value = row.get(key)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, (datetime, date)):
            value = value.isoformat()
        out[key] = value
    return out


def to_csv(result: ReportResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = result.report.columns
    writer.writerow([key for key, _ in columns])
    for row in result.rows[:CSV_MAX_ROWS]:
        writer.writerow([_csv_safe(cell(row.get(key))) for key, _ in columns])
    return out.getvalue()


def _csv_safe(value):
    # Spreadsheet formula injection: a text cell must not start with a formula character.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def to_xlsx(result: ReportResult) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(result.report.title[:31])
    sheet.append([f"{result.report.title} as of {result.as_of.isoformat()}"])
    sheet.append([label for _, label in result.report.columns])
    for row in result.rows:
        values = []
        for key, _ in result.report.columns:
            value = row.get(key)
            if isinstance(value, (list, tuple)):
                value = ";".join(str(v) for v in value)
            elif isinstance(value, datetime):
                value = value.replace(tzinfo=None)
            elif isinstance(value, str):
                value = _csv_safe(value)
            values.append(value)
        sheet.append(values)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _short(label: str) -> str:
    label = str(label)
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def render_chart(result: ReportResult, fmt: str) -> bytes:
    """The report's chart as PNG or SVG bytes, with its title and date."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    data: ChartData = result.report.chart(result.rows, result.params)
    labels = [_short(label) for label in data.labels[:MAX_BARS]]
    series = {name: list(values[:MAX_BARS]) for name, values in data.series.items()}
    with matplotlib.rc_context({"svg.hashsalt": "cairn", "font.size": 9, "svg.fonttype": "none"}):
        fig = Figure(figsize=FIG_SIZE, dpi=DPI, layout="constrained")
        ax = fig.subplots()
        fig.suptitle(result.report.title, fontsize=13, fontweight="bold")
        ax.set_title(f"as of {result.as_of.isoformat()} · {len(result.rows)} rows", fontsize=9, color="#555555")
        if not labels or not any(any(v for v in values) for values in series.values()):
            ax.text(0.5, 0.5, "Nothing to report", ha="center", va="center", fontsize=14, transform=ax.transAxes)
            ax.set_axis_off()
        else:
            _bars(ax, labels, series, data)
        out = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def _bars(ax, labels, series, data: ChartData) -> None:
    positions = list(range(len(labels)))
    count = len(series)
    width = 0.8 if data.stacked or count == 1 else 0.8 / count
    offsets = [0.0] * len(labels)
    palette = ["#2f6f9f", "#e07b39", "#5a9e4b", "#b94a48", "#7d5ba6", "#8c8c8c"]
    for index, (name, values) in enumerate(series.items()):
        shift = 0 if data.stacked or count == 1 else (index - (count - 1) / 2) * width
        where = [p + shift for p in positions]
        colour = palette[index % len(palette)]
        if data.horizontal:
            ax.barh(where, values, height=width, left=offsets if data.stacked else None, label=name, color=colour)
        else:
            ax.bar(where, values, width=width, bottom=offsets if data.stacked else None, label=name, color=colour)
        if data.stacked:
            offsets = [o + v for o, v in zip(offsets, values, strict=True)]
    if data.horizontal:
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xlabel(data.value_label)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_xticks(
            positions, labels, rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center"
        )
        ax.set_ylabel(data.value_label)
        ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if count > 1:
        ax.legend(loc="best", fontsize=8)
