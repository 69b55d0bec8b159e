"""`cairn import cis|relationships FILE.csv`, `cairn export cis`, `cairn webhooks sweep`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from cairn.audit.context import Actor, acting_as
from cairn.errors import Invalid
from cairn.uow import checkpoint


@click.group("import")
def import_cli():
    """Import CIs or relationships from CSV files."""


def _run_import(kind: str, path: str, source: str | None, dry_run: bool, report_path: str | None) -> None:
    from integrations import csvio

    try:
        text = csvio.decode(Path(path).read_bytes())
        total = csvio.check_file("import_cis" if kind == "cis" else "import_relationships", text)
    except Invalid as exc:
        raise click.ClickException(exc.detail)
    run = csvio.import_cis if kind == "cis" else csvio.import_relationships
    with (
        acting_as(Actor(f"cli:import-{kind}")),
        click.progressbar(length=total, label=f"Importing {kind}", file=sys.stderr) as bar,
    ):
        report = run(text, source=source, dry_run=dry_run, progress=bar.update)
    checkpoint()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    click.echo(f"{'dry run: ' if dry_run else ''}{counts}")
    if report.errors:
        target = report_path or f"{path}.errors.csv"
        csvio.write_error_report(report, target)
        click.echo(f"{len(report.errors)} rows failed; see {target}")
        sys.exit(2)


@import_cli.command("cis")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", help="The source the external_id column names (default: csv).")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option("--report", "report_path", help="Where to write per-row errors (default: FILE.errors.csv).")
@with_appcontext
def import_cis_command(path, source, dry_run, report_path):
    """Import CIs from a CSV file (attributes as attributes.<name> columns)."""
    _run_import("cis", path, source, dry_run, report_path)


@import_cli.command("relationships")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", help="The source of *_external_id columns without their own *_external_source.")
@click.option("--dry-run", is_flag=True)
@click.option("--report", "report_path")
@with_appcontext
def import_relationships_command(path, source, dry_run, report_path):
    """Import relationships from a CSV file (ends by id or external id)."""
    _run_import("relationships", path, source, dry_run, report_path)


@click.group("export")
def export_cli():
    """Export CSV."""


@export_cli.command("cis")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File to write (default: stdout).")
@click.option("--ci-class", "ci_class", multiple=True, help="Only these classes (repeatable).")
@click.option("--status", multiple=True)
@with_appcontext
def export_cis_command(output, ci_class, status):
    """Stream every CI (or those of --ci-class/--status) as CSV."""
    from integrations.csvio import export_cis

    filters = {"ci_class": list(ci_class) or None, "status": list(status) or None}
    handle = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    try:
        for chunk in export_cis(filters):
            handle.write(chunk)
    finally:
        if output:
            handle.close()


@click.group("webhooks")
def webhooks_cli():
    """Webhook dispatching (what the scheduler does periodically)."""


@webhooks_cli.command("sweep")
@with_appcontext
def sweep_command():
    """Dispatch new changes to subscriptions and send what is due (use without Redis)."""
    from integrations.webhooks import services

    with acting_as(Actor("cli:webhooks-sweep")):
        result = services.sweep()
    checkpoint()
    click.echo(f"dispatched {result['dispatched']}, queued {result['queued']}")


def register(app) -> None:
    app.cli.add_command(import_cli)
    app.cli.add_command(export_cli)
    app.cli.add_command(webhooks_cli)
