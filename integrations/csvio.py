"""CSV import of CIs and relationships (CLI and API job), and CSV export of CIs.

An import is checked whole before anything is written (encoding, CSV structure, headers), then
written page by page through the bulk services, one bad row failing alone; each row's error goes to
the report (a CSV file for the CLI, the job's results for the API).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from marshmallow import fields as ma_fields

from cairn import request_body
from cairn.audit.context import current_actor
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Invalid
from cairn.jobs import durable
from cairn.safe_output import csv_value, csv_writer
from cairn.uow import checkpoint
from cmdb.classes import REGISTRY
from cmdb.custom_fields.registry import current as current_fields
from cmdb.export import attribute_columns, custom_field_columns
from integrations.sync import services as sync_services
from integrations.sync.models import SyncJob
from integrations.sync.schemas import CIImportRowSchema, RelationshipBulkItemSchema

PAGE = 500
MAX_FIELD = 64 * 1024
CI_COLUMNS = (
    "name", "ci_class", "status", "criticality", "asset_tag", "serial_number", "vendor", "model", "description",
    "owner_team_id", "assigned_to_id", "location_id", "purchase_date", "purchase_cost", "currency",
    "warranty_expires", "external_id",
)  # fmt: skip
INT_COLUMNS = {"owner_team_id", "assigned_to_id", "location_id", "source_id", "target_id"}
# Export-only columns an exported file carries; importing it back ignores them.
IGNORED_COLUMNS = {"id", "external_ids", "created_at", "updated_at"}
REL_COLUMNS = (
    "source_id", "source_external_source", "source_external_id", "type",
    "target_id", "target_external_source", "target_external_id", "note",
)  # fmt: skip
_TYPED = (ma_fields.Integer, ma_fields.Float, ma_fields.Boolean, ma_fields.List, ma_fields.Dict, ma_fields.Number)
_ci_schema = CIImportRowSchema()
_rel_schema = RelationshipBulkItemSchema()


@dataclass
class ImportReport:
    counts: Counter = field(default_factory=Counter)
    errors: list[dict] = field(default_factory=list)  # {row, status, errors}


# ---------------------------------------------------------------------------------------------
# Reading and checking


def decode(data: bytes) -> str:
    """UTF-8 (a BOM is dropped); anything else is a clear 422 naming the byte offset."""
    try:
        return codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(
            f"The file is not UTF-8 (byte {exc.start}); save it as UTF-8 and try again.",
            errors={"file": [f"Not UTF-8 at byte {exc.start}."]},
        )


def _rows(text: str) -> tuple[list[str], list[list[str]]]:
    """Parse the whole text (it is checked before any row is written)."""
    previous = csv.field_size_limit(MAX_FIELD)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise Invalid("The file is empty.", errors={"file": ["No header row."]})
        rows = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise Invalid(
                    f"Row {reader.line_num} has {len(row)} cells, the header {len(header)}.",
                    errors={"file": [f"Row {reader.line_num}: wrong number of cells."]},
                )
            rows.append(row)
        return [h.strip() for h in header], rows
    except csv.Error as exc:
        line = getattr(reader, "line_num", 0)
        raise Invalid(f"Not valid CSV near line {line}: {exc}.", errors={"file": [f"Line {line}: {exc}."]})
    finally:
        csv.field_size_limit(previous)


def _check_header(header: list[str], known: set[str], required: set[str]) -> None:
    unknown = [h for h in header if h not in known and h not in IGNORED_COLUMNS]
    duplicate = sorted({h for h in header if header.count(h) > 1})
    missing = sorted(required - set(header))
    problems = []
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    if duplicate:
        problems.append(f"repeated columns: {', '.join(duplicate)}")
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if problems:
        raise Invalid("The header is wrong: " + "; ".join(problems) + ".", errors={"header": problems})


def _ci_columns() -> set[str]:
    """The columns a CI import takes: the CI's fields, its attributes and its custom fields (cf_<name>)."""
    return {*CI_COLUMNS, *attribute_columns(), *custom_field_columns()}


def _typed_attributes() -> set[str]:
    names = set()
    for cls in REGISTRY.values():
        names.update(n for n, f in cls.attributes._declared_fields.items() if isinstance(f, _TYPED))
    return names


_TYPED_ATTRIBUTES = _typed_attributes()


def _attribute_value(name: str, text: str):
    """Typed attributes (numbers, booleans, lists) are JSON in the cell; the rest are text."""
    if name in _TYPED_ATTRIBUTES:
        try:
            return request_body.loads(text)  # the kernel's limits: depth, digits, lone surrogates
        except ValueError:
            return text  # the class schema names the problem
    return text


# Custom fields whose cells are JSON (numbers, booleans, lists, ids); the others are text.
_JSON_CUSTOM_TYPES = frozenset(("integer", "decimal", "boolean", "multi_choice", "ci", "user", "team"))


def _custom_value(name: str, text: str):
    definition = current_fields().by_name.get(name)
    if definition is not None and definition.type in _JSON_CUSTOM_TYPES:
        try:
            return request_body.loads(text)
        except ValueError:
            return text  # the field's check names the problem
    return text


def _ci_body(header: list[str], row: list[str], source: str | None) -> dict:
    body: dict = {}
    attributes: dict = {}
    custom: dict = {}
    for name, cell in zip(header, row, strict=True):
        value = csv_value(cell.strip())
        if name in IGNORED_COLUMNS or value == "":
            continue
        if name.startswith("attributes."):
            attributes[name[11:]] = _attribute_value(name[11:], value)
        elif name.startswith("cf_"):
            custom[name[3:]] = _custom_value(name[3:], value)
        elif name == "external_id":
            body["external_id"] = {"source": source or "csv", "id": value}
        elif name in INT_COLUMNS:
            body[name] = int(value) if value.isdigit() and len(value) < 12 else value
        else:
            body[name] = value
    if attributes:
        body["attributes"] = attributes
    if custom:
        body["custom_fields"] = custom
    return body


def _rel_body(header: list[str], row: list[str], source: str | None) -> dict:
    cells = {name: csv_value(cell.strip()) for name, cell in zip(header, row, strict=True) if cell.strip()}
    body: dict = {"type": cells.get("type", "")}
    for end in ("source", "target"):
        if f"{end}_id" in cells:
            value = cells[f"{end}_id"]
            body[f"{end}_id"] = int(value) if value.isdigit() and len(value) < 12 else value
        if f"{end}_external_id" in cells:
            body[end] = {
                "source": cells.get(f"{end}_external_source") or source or "csv",
                "id": cells[f"{end}_external_id"],
            }
    if cells.get("note"):
        body["note"] = cells["note"]
    return body


# ---------------------------------------------------------------------------------------------
# Importing


def import_cis(
    text: str,
    *,
    source: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    commit: bool = True,
    resume: ImportProgress | None = None,
) -> ImportReport:
    """Import CIs from CSV text: with an ``external_id`` column rows upsert by ``source``'s id,
    without one they create CIs. Commits after each page unless ``dry_run`` or ``commit=False``;
    ``resume`` starts after the rows already committed and records each page's end with it."""
    header, rows = _rows(text)
    _check_header(header, _ci_columns(), {"name", "ci_class"} if "external_id" not in header else set())
    return _import(
        rows,
        lambda row: _ci_body(header, row, source),
        sync_services.bulk_cis,
        _ci_schema,
        dry_run,
        progress,
        commit,
        resume,
    )


def import_relationships(
    text: str,
    *,
    source: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    commit: bool = True,
    resume: ImportProgress | None = None,
) -> ImportReport:
    """Import relationships from CSV text; ends by ``source_id``/``target_id`` or by external ids."""
    header, rows = _rows(text)
    _check_header(header, set(REL_COLUMNS), {"type"})
    return _import(
        rows,
        lambda row: _rel_body(header, row, source),
        sync_services.bulk_relationships,
        _rel_schema,
        dry_run,
        progress,
        commit,
        resume,
    )


@dataclass
class ImportProgress:
    """Where a resumable import is: ``position`` rows committed, with ``report`` so far; ``on_page``
    records a page's end in the same transaction as the page's rows (a job's position column)."""

    position: int = 0
    report: ImportReport = field(default_factory=ImportReport)
    on_page: Callable[[int, ImportReport], None] | None = None


def _import(rows, to_body, bulk, schema, dry_run, progress, commit, resume=None) -> ImportReport:
    resume = resume or ImportProgress()
    report = resume.report
    for start in range(resume.position, len(rows), PAGE):
        page = rows[start : start + PAGE]
        results = bulk([to_body(row) for row in page], schema, dry_run=dry_run)
        for result in results:
            report.counts[result.status] += 1
            if result.status == "error":
                # Row numbers as a spreadsheet shows them: the header is row 1.
                report.errors.append({"row": start + result.index + 2, "status": "error", "errors": result.errors})
        if resume.on_page is not None:
            resume.on_page(start + len(page), report)
        if commit:
            checkpoint()  # an import commits page by page, its position with it (a dry run: its heartbeat)
        if progress is not None:
            progress(len(page))
    report.counts["rows"] = len(rows)
    return report


def write_error_report(report: ImportReport, path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv_writer(handle)
        writer.writerow(["row", "status", "errors"])
        for entry in report.errors:
            writer.writerow([entry["row"], entry["status"], json.dumps(entry["errors"], ensure_ascii=False)])


# ---------------------------------------------------------------------------------------------
# Import jobs (the API)


def check_file(kind: str, text: str) -> int:
    """Check a whole file (structure, header) before anything is written; returns its row count."""
    header, rows = _rows(text)
    if kind == "import_cis":
        required = {"name", "ci_class"} if "external_id" not in header else set()
        _check_header(header, _ci_columns(), required)
    else:
        _check_header(header, set(REL_COLUMNS), {"type"})
    return len(rows)


def start_import(kind: str, data: bytes, *, source: str | None, dry_run: bool) -> SyncJob:
    """Check the file now (422 for a wrong encoding, structure or header) and store it for the job,
    queued once this commits."""
    text = decode(data)
    check_file(kind, text)
    job = SyncJob(kind=kind, source=source or "", dry_run=dry_run, actor=current_actor().label, payload_text=text)
    db.session.add(job)
    db.session.flush()
    durable.queue_row(job, IMPORT_JOB, job_id=f"cairn-import-{job.id}")
    return job


IMPORT_JOB = "integrations.sync.tasks.run_import"
IMPORT_KINDS = ("import_cis", "import_relationships")


def run_import_job(job_id: int) -> None:
    """RQ job: run a stored import, committing page by page with its position; a run whose worker
    died is picked up again by the durable sweep and resumes after the last committed page. Per-row
    errors land in the job's results."""
    job = durable.claim(SyncJob, job_id) if 0 < job_id <= MAX_ID else None
    if job is None or job.kind not in IMPORT_KINDS:
        return
    if job.started_at is None:
        job.started_at = utcnow()
    checkpoint()  # claimed: the heartbeat tells the sweep this run is alive

    def on_page(position: int, report: ImportReport) -> None:
        job.position, job.heartbeat_at = position, utcnow()
        job.counts = dict(report.counts)
        job.results = report.errors[:10_000]

    previous = ImportReport(Counter(job.counts or {}), list(job.results or []))
    previous.counts.pop("rows", None)
    resume = ImportProgress(0 if job.dry_run else job.position, previous, on_page)
    run = import_cis if job.kind == "import_cis" else import_relationships
    try:
        report = run(job.payload_text or "", source=job.source or None, dry_run=job.dry_run, resume=resume)
    except Exception as exc:  # noqa: BLE001 - recorded on the job, which is what the client polls
        db.session.rollback()
        job = db.session.get(SyncJob, job_id)
        job.status, job.error, job.finished_at = "failed", f"{getattr(exc, 'detail', exc)}"[:2000], utcnow()
        return
    job.counts, job.results = dict(report.counts), report.errors[:10_000]
    job.status, job.finished_at, job.payload_text = "done", utcnow(), None


def stale_import_ids() -> list[int]:
    return durable.stale_ids(SyncJob, SyncJob.kind.in_(IMPORT_KINDS))


def requeue_import(job_id: int) -> None:
    job = db.session.get(SyncJob, job_id)
    if job is not None:
        durable.queue_row(job, IMPORT_JOB, job_id=f"cairn-import-{job.id}")


def export_cis(filters: dict):
    """CSV chunks of the CIs matching ``filters`` (the GET /cis filters), streamed."""
    from cmdb.export import iter_csv
    from cmdb.services import search_cis

    return iter_csv(search_cis(filters), filters.get("ci_class"))
