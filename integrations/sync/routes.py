"""Bulk writes, discovery runs and CSV imports: /cis/bulk, /relationships/bulk, /discovery/runs,
/imports."""

from __future__ import annotations

from flask import request
from flask.views import MethodView

from cairn.api import Blueprint
from cairn.auth.guard import requires
from cairn.auth.roles import CMDB_WRITERS, STAFF_READERS
from cairn.http import accepts
from integrations import csvio, discovery
from integrations.sync import services
from integrations.sync.schemas import (
    BulkQuerySchema,
    BulkResultSchema,
    CIBulkItemSchema,
    DiscoveryRunWriteSchema,
    ImportQuerySchema,
    RawItemSchema,
    RelationshipBulkItemSchema,
    SyncJobSchema,
)

blp = Blueprint("sync", __name__, description="Bulk writes, discovery with reconciliation, CSV import")

_ci_item = CIBulkItemSchema()
_rel_item = RelationshipBulkItemSchema()


def _bulk_body_doc(item: str) -> dict:
    """The document of a bulk body: 1 to MAX_ITEMS items of any JSON, each validated on its own (a
    bad item, even one that is no object, fails alone in the 200 answer)."""
    schema = {"type": "array", "minItems": 1, "maxItems": services.MAX_ITEMS, "items": {"description": item}}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


@blp.route("/cis/bulk")
class CIsBulk(MethodView):
    @requires(*CMDB_WRITERS)
    @blp.arguments(BulkQuerySchema, location="query")
    @blp.arguments(RawItemSchema(many=True), description="up to 1,000 CI bodies, each with external_id {source, id}")
    @blp.doc(**_bulk_body_doc("a CI body (as for PUT /cis/external/...) with external_id {source, id}"))
    @blp.response(200, BulkResultSchema(many=True))
    def post(self, args, items):
        """Upsert up to 1,000 CIs by external id; per-item results, one bad item fails alone."""
        results = services.bulk_cis(services.bulk_body(items), _ci_item, dry_run=args["dry_run"])
        return [r.as_dict() for r in results]


@blp.route("/relationships/bulk")
class RelationshipsBulk(MethodView):
    @requires(*CMDB_WRITERS)
    @blp.arguments(BulkQuerySchema, location="query")
    @blp.arguments(RawItemSchema(many=True), description="up to 1,000 relationships; ends by id or external id")
    @blp.doc(
        **_bulk_body_doc("{type, note?} and each end by id (source_id, target_id) or external id (source, target)")
    )
    @blp.response(200, BulkResultSchema(many=True))
    def post(self, args, items):
        """Create up to 1,000 relationships; existing ones are unchanged; one bad item fails alone."""
        results = services.bulk_relationships(services.bulk_body(items), _rel_item, dry_run=args["dry_run"])
        return [r.as_dict() for r in results]


@blp.route("/discovery/runs")
class DiscoveryRuns(MethodView):
    @requires(*CMDB_WRITERS)
    @blp.arguments(BulkQuerySchema, location="query")
    @blp.arguments(DiscoveryRunWriteSchema)
    @blp.response(201, SyncJobSchema)
    @blp.alt_response(202, schema=SyncJobSchema, description="Queued: poll GET /discovery/runs/{id}")
    def post(self, args, data):
        """Reconcile discovered items from a source (large payloads in a job: 202)."""
        job = discovery.start_run(data["source"], data["items"], dry_run=args["dry_run"])
        return (job, 202) if job.status == "queued" else job


@blp.route("/discovery/runs/<int:run_id>")
class DiscoveryRunById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, SyncJobSchema)
    def get(self, run_id):
        """A discovery run: status, counts, and the items that were ambiguous, failed or changed."""
        return discovery.get_job(run_id, "discovery")


def _start_import(kind: str, args: dict):
    return csvio.start_import(
        kind, request.get_data(cache=False), source=args.get("source"), dry_run=args["dry_run"]
    ), 202


@blp.route("/imports/cis")
class ImportCIs(MethodView):
    @requires(*CMDB_WRITERS)
    @accepts("text/csv")
    @blp.arguments(ImportQuerySchema, location="query")
    @blp.response(202, SyncJobSchema)
    def post(self, args):
        """Import CIs from a CSV body (text/csv) in a job; poll GET /imports/{id}."""
        return _start_import("import_cis", args)


@blp.route("/imports/relationships")
class ImportRelationships(MethodView):
    @requires(*CMDB_WRITERS)
    @accepts("text/csv")
    @blp.arguments(ImportQuerySchema, location="query")
    @blp.response(202, SyncJobSchema)
    def post(self, args):
        """Import relationships from a CSV body (text/csv) in a job; poll GET /imports/{id}."""
        return _start_import("import_relationships", args)


@blp.route("/imports/<int:import_id>")
class ImportById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, SyncJobSchema)
    def get(self, import_id):
        """An import: status, counts and the rows that failed (row number and errors)."""
        return discovery.get_job(import_id, ("import_cis", "import_relationships"))
