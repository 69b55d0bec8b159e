"""`cairn report NAME --format csv|svg|png|json|xlsx -o FILE [-p key=value ...]`."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from cairn.errors import DomainError


@click.command("report")
@click.argument("name", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "xlsx", "svg", "png"]), default="csv", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="file to write (default stdout)")
@click.option("-p", "--param", "params", multiple=True, help="a report parameter, key=value (repeatable)")
@click.option("--list", "list_reports", is_flag=True, help="list the reports and exit")
@with_appcontext
def report_command(name, fmt, output, params, list_reports):
    """Compute a report and write it as CSV, JSON, XLSX or an SVG/PNG chart."""
    from integrations.reports import registry, render

    if list_reports or not name:
        for report in registry.all_reports():
            click.echo(f"{report.name:24} {report.title}")
        return
    raw = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--param")
        raw[key] = value
    try:
        report = registry.get_report(name)
        if fmt not in report.formats and fmt != "json":
            raise click.BadParameter(f"{name} comes as {', '.join(report.formats)}", param_hint="--format")
        result = registry.run_for_chart(name, raw) if fmt in ("svg", "png") else registry.run(name, raw)
    except DomainError as exc:
        click.echo(f"error: {exc.detail} {json.dumps(exc.errors) if exc.errors else ''}".rstrip(), err=True)
        sys.exit(2)
    if fmt == "csv":
        data: bytes = render.to_csv(result).encode()
    elif fmt == "json":
        rows = [render.jsonable_row(r, report.columns) for r in result.rows]
        data = (json.dumps(rows, indent=2, ensure_ascii=False) + "\n").encode()
    elif fmt == "xlsx":
        data = render.to_xlsx(result)
    else:
        data = render.render_chart(result, fmt)
    if output:
        with open(output, "wb") as handle:
            handle.write(data)
        click.echo(f"{name}: {result.total} rows, {len(data)} bytes written to {output}", err=True)
    else:
        sys.stdout.buffer.write(data)


def register(app) -> None:
    app.cli.add_command(report_command)
