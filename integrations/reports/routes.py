"""/reports: the registry, each report as JSON (paginated), CSV, XLSX (where offered), SVG and PNG."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView

from cairn.api import Blueprint, OneOf, Schema
from cairn.auth.guard import requires
from cairn.auth.roles import ASSET_READERS
from cairn.errors import Invalid, NotFound
from integrations.reports import registry, render

blp = Blueprint("reports", __name__, description="Asset reports as JSON, CSV and charts")

RESERVED = ("format", "page", "page_size")


class ReportInfoSchema(Schema):
    name = ma.fields.String()
    title = ma.fields.String()
    description = ma.fields.String()
    columns = ma.fields.List(ma.fields.String())
    formats = ma.fields.List(ma.fields.String())
    parameters = ma.fields.List(ma.fields.String())


class ReportQuerySchema(Schema):
    class Meta:
        unknown = ma.INCLUDE  # the report's own parameters, validated by its schema

    format = OneOf(("json", "csv", "xlsx"), load_default="json")


class ChartQuerySchema(Schema):
    class Meta:
        unknown = ma.INCLUDE  # the report's own parameters, validated by its schema


def _info(report: registry.Report) -> dict:
    return {
        "name": report.name,
        "title": report.title,
        "description": report.description,
        "columns": [key for key, _ in report.columns],
        "formats": list(report.formats),
        "parameters": sorted(report.params().fields),
    }


def _params() -> dict:
    return {k: v for k, v in request.args.items() if k not in RESERVED}


def _filename(result, ext: str) -> str:
    return f'attachment; filename="{result.report.name}-{result.as_of.isoformat()}.{ext}"'


@blp.route("/reports")
class Reports(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, ReportInfoSchema(many=True))
    def get(self):
        """Every report by name, with its columns, formats and parameters."""
        return [_info(r) for r in registry.all_reports()]


@blp.route("/reports/<string:name>")
class ReportByName(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200)
    @blp.paginate()
    def get(self, query, name, pagination_parameters):
        """A report's rows: JSON (paginated), or ?format=csv (all rows), ?format=xlsx where offered."""
        from flask import current_app

        report = registry.get_report(name)
        fmt = query["format"]
        if fmt not in report.formats:
            raise Invalid(f"Report {name} comes as {', '.join(report.formats)}.", errors={"format": ["Not offered."]})
        result = registry.run(name, _params())
        pagination_parameters.item_count = len(result.rows)
        if fmt == "csv":
            return current_app.response_class(
                render.iter_csv(result),
                mimetype="text/csv",
                headers={"Content-Disposition": _filename(result, "csv")},
            )
        if fmt == "xlsx":
            return current_app.response_class(
                render.to_xlsx(result),
                mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers={"Content-Disposition": _filename(result, "xlsx")},
            )
        start = (pagination_parameters.page - 1) * pagination_parameters.page_size
        page = result.rows[start : start + pagination_parameters.page_size]
        return [render.jsonable_row(row, result.report.columns) for row in page]


CHART_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def _chart(name: str, ext: str):
    from flask import current_app

    report = registry.get_report(name)
    if ext not in report.formats:
        raise NotFound(f"Report {name} has no {ext} chart.")
    result = registry.run_for_chart(name, _params())
    response = current_app.response_class(render.render_chart(result, ext), mimetype=CHART_TYPES[ext])
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@blp.route("/reports/<string:name>.svg")
class ReportSVG(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(ChartQuerySchema, location="query")
    @blp.response(200, content_type="image/svg+xml")
    def get(self, _query, name):
        """The report as an SVG chart (1000x600, with its title and date)."""
        return _chart(name, "svg")


@blp.route("/reports/<string:name>.png")
class ReportPNG(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(ChartQuerySchema, location="query")
    @blp.response(200, content_type="image/png")
    def get(self, _query, name):
        """The report as a PNG chart (1000x600, with its title and date)."""
        return _chart(name, "png")
