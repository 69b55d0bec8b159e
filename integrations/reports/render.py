"""Report output: CSV, XLSX and charts (matplotlib, Agg, rendered on the server, fixed size)."""

from __future__ import annotations

import io
import threading
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal

from cairn.safe_output import csv_cell, csv_writer, xml_attr, xml_chars, xml_text
from integrations.reports.registry import ChartData, ReportResult

# Charts are a fixed 1000 x 600 pixels (10 x 6 inches at 100 dpi) whatever the data: the largest
# series are drawn, the rest folded into 'other' by each report's chart function.
FIG_SIZE = (10, 6)
DPI = 100
MAX_LABEL = 40
FONT_SIZE = 9
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
    return "".join(iter_csv(result))


def iter_csv(result: ReportResult, chunk_rows: int = 2000):
    """The report as CSV, in chunks of ``chunk_rows`` rows (a streamed response body). Written by the
    kernel's CSV writer: no cell runs as a spreadsheet formula (see cairn.safe_output)."""
    out = io.StringIO()
    writer = csv_writer(out)
    columns = [key for key, _ in result.report.columns]
    writer.writerow(columns)
    for index, row in enumerate(result.rows[:CSV_MAX_ROWS], 1):
        writer.writerow([cell(row.get(key)) for key in columns])
        if index % chunk_rows == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def to_xlsx(result: ReportResult) -> bytes:
    """The report as an XLSX workbook: a title row, the column labels, then one row per report row,
    dates as Excel dates and numbers as numbers.

    Written directly as SpreadsheetML (a zip of a few XML parts, cells as inline strings) rather than
    through openpyxl's writer, which costs ~10 µs a cell: the register's 900,000 cells took 10 s. The
    workbook reads back in Excel, LibreOffice and openpyxl (the tests load it with openpyxl)."""
    columns = [key for key, _ in result.report.columns]
    title = f"{result.report.title} as of {result.as_of.isoformat()}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, body in _xlsx_parts(result.report.title[:31]).items():
            archive.writestr(name, body)
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(_SHEET_HEAD)
            buffer = [_xlsx_row([title]), _xlsx_row([label for _, label in result.report.columns])]
            for index, row in enumerate(result.rows, 1):
                buffer.append(_xlsx_row([row.get(key) for key in columns]))
                if index % 2000 == 0:
                    sheet.write("".join(buffer).encode())
                    buffer.clear()
            buffer.append("</sheetData></worksheet>")
            sheet.write("".join(buffer).encode())
    return out.getvalue()


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_SHEET_HEAD = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN_NS}"><sheetData>'.encode()
)
_EXCEL_EPOCH = datetime(1899, 12, 30)


def _xlsx_parts(sheet_name: str) -> dict[str, str]:
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    office = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    doc_rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    return {
        "[Content_Types].xml": head
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        + '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        + '<Default Extension="xml" ContentType="application/xml"/>'
        + f'<Override PartName="/xl/workbook.xml" ContentType="{office}.sheet.main+xml"/>'
        + f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{office}.worksheet+xml"/>'
        + f'<Override PartName="/xl/styles.xml" ContentType="{office}.styles+xml"/></Types>',
        "_rels/.rels": head
        + f'<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" '
        + f'Type="{doc_rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": head
        + f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><sheets>'
        + f'<sheet name="{xml_attr(sheet_name)}" sheetId="1" r:id="rId1"/>'
        + "</sheets></workbook>",
        "xl/_rels/workbook.xml.rels": head
        + f'<Relationships xmlns="{_PKG_REL_NS}">'
        + f'<Relationship Id="rId1" Type="{doc_rel}/worksheet" Target="worksheets/sheet1.xml"/>'
        + f'<Relationship Id="rId2" Type="{doc_rel}/styles" Target="styles.xml"/></Relationships>',
        # Style 1: a date (built-in format 14), style 2: a date and time (22).
        "xl/styles.xml": head
        + f'<styleSheet xmlns="{_MAIN_NS}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        + '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        + '<fill><patternFill patternType="gray125"/></fill></fills>'
        + '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        + '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        + '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        + '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        + '<xf numFmtId="22" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        + '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
    }


def _xlsx_row(values) -> str:
    cells = []
    for value in values:
        if value is None:
            cells.append("<c/>")
        elif isinstance(value, bool):
            cells.append(f'<c t="b"><v>{int(value)}</v></c>')
        elif isinstance(value, (int, float, Decimal)):
            cells.append(f"<c><v>{value}</v></c>")
        elif isinstance(value, datetime):
            moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
            serial = (moment - _EXCEL_EPOCH).total_seconds() / 86400
            cells.append(f'<c s="2"><v>{serial:.10f}</v></c>')
        elif isinstance(value, date):
            cells.append(f'<c s="1"><v>{(value - _EXCEL_EPOCH.date()).days}</v></c>')
        else:
            if isinstance(value, (list, tuple)):
                value = ";".join(str(v) for v in value)
            # Text as the kernel writes XML (what XML 1.0 forbids replaced), quoted like a CSV cell
            # so that a cell someone re-enters in Excel does not become a formula.
            text = xml_text(csv_cell(str(value)))
            cells.append(f'<c t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>')
    return "<row>" + "".join(cells) + "</row>"


def _short(label: str) -> str:
    # SVG is XML: a label holding a control character would make the chart unreadable.
    label = xml_chars(label)
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


_configured = threading.Lock()
_ready = False


def _matplotlib():
    """Agg and the two SVG settings that exist only as rcParams, set once per process rather than per
    call (changing rcParams per chart is not thread-safe); everything else is set on the Figure."""
    global _ready
    import matplotlib

    with _configured:
        if not _ready:
            matplotlib.use("Agg", force=False)
            # Deterministic SVG ids, and text kept as text (searchable, small).
            matplotlib.rcParams["svg.hashsalt"] = "cairn"
            matplotlib.rcParams["svg.fonttype"] = "none"
            _ready = True
    from matplotlib.figure import Figure

    return Figure


def render_chart(result: ReportResult, fmt: str) -> bytes:
    """The report's chart as PNG or SVG bytes, with its title and date. Thread-safe: a Figure of its
    own per call, no pyplot state, no rcParams changes."""
    figure = _matplotlib()
    data: ChartData = result.report.chart(result.rows, result.params)
    labels = [_short(label) for label in data.labels[:MAX_BARS]]
    series = {name: list(values[:MAX_BARS]) for name, values in data.series.items()}
    fig = figure(figsize=FIG_SIZE, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    fig.suptitle(result.report.title, fontsize=13, fontweight="bold")
    ax.set_title(f"as of {result.as_of.isoformat()} · {result.total} rows", fontsize=9, color="#555555")
    if not labels or not any(any(v for v in values) for values in series.values()):
        ax.text(0.5, 0.5, "Nothing to report", ha="center", va="center", fontsize=14, transform=ax.transAxes)
        ax.set_axis_off()
    else:
        _bars(ax, labels, series, data)
    out = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def _thousands(value, _position) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.1f}"


def _bars(ax, labels, series, data: ChartData) -> None:
    from matplotlib.ticker import FuncFormatter

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
        ax.set_xlabel(data.value_label, fontsize=FONT_SIZE)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_xticks(
            positions, labels, rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center"
        )
        ax.set_ylabel(data.value_label, fontsize=FONT_SIZE)
        ax.grid(axis="y", alpha=0.3)
    ax.tick_params(labelsize=FONT_SIZE)
    # Plain numbers with thousands separators, never a "1e8" offset under the axis.
    (ax.xaxis if data.horizontal else ax.yaxis).set_major_formatter(FuncFormatter(_thousands))
    ax.set_axisbelow(True)
    if count > 1:
        ax.legend(loc="best", fontsize=8)
