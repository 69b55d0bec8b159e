"""Configuration items: the list (filters, sort, paging and a CSV export, all in the URL) and the CI
page (its class's attributes, lifecycle moves, holders, relationships, tickets, what depends on it,
and one timeline of everything that happened to it)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import marshmallow as ma
from flask import Response, flash, g, redirect, render_template, request, stream_with_context, url_for
from flask_babel import format_timedelta, to_user_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from cairn.auth.models import Team, User
from cairn.auth.roles import CMDB_WRITERS
from cairn.auth.sessions import page
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, DomainError, Invalid
from cairn.pagination import count_of
from cmdb import export
from cmdb.classes import CATEGORIES, REGISTRY
from cmdb.lifecycle import STATUSES, allowed_moves
from cmdb.models import ConfigurationItem, Location
from cmdb.schemas import CIQuerySchema, CIUpdateSchema
from cmdb.services import assignments_of, get_ci, search_cis, update_ci
from integrations.timeline import KINDS
from integrations.timeline import ci_timeline as timeline_of
from relations.services import impact, relationship_types, search_relationships
from tickets.models import Ticket
from tickets.services import ci_figures, tickets_of_ci
from tickets.workflow import DONE_STATES
from web.blueprint import bp
from web.custom_fields import (
    ADD_FIELD,
    cell,
    filter_chips,
    list_columns,
    list_filter_args,
    picker_fields,
    value_groups,
)
from web.forms import field_errors, form_int, keep_errors, load
from web.shell import STAFF
from web.views import ViewsBar, views_context

PAGE_SIZE = 50
TIMELINE_SIZE = 30
RELATIONSHIPS_SHOWN = 50
ASSIGNMENTS_SHOWN = 25
TICKETS_SHOWN = 15
IMPACT_DEPTH = 5  # "what depends on this" walks at most this many hops (the map in part 2 goes further)
IMPACT_LISTED = 6
LOCATIONS_OFFERED = 2000
TEAMS_OFFERED = 500
WARRANTY_DAYS = 90
MAX_WARRANTY_DAYS = 3650
# The API's list filters the filter form has no field for (a saved view may hold them).
EXTRA_FILTERS = tuple(
    name for name in CIQuerySchema().fields if name not in ("q", "ci_class", "status", "owner_team_id", "location_id",
                                                             "sort", "format")
)  # fmt: skip
# Who may move a CI through its lifecycle from a page (the API's CMDB writers who can sign in).
MOVERS = tuple(role for role in CMDB_WRITERS if role in STAFF)

STATUS_LABELS = {
    "planned": _l("Planned"),
    "ordered": _l("Ordered"),
    "in_stock": _l("In stock"),
    "deployed": _l("Deployed"),
    "in_maintenance": _l("In maintenance"),
    "retired": _l("Retired"),
    "disposed": _l("Disposed"),
}
MOVE_LABELS = {
    "planned": _l("Back to planned"),
    "ordered": _l("Mark ordered"),
    "in_stock": _l("Put in stock"),
    "deployed": _l("Deploy"),
    "in_maintenance": _l("Send to maintenance"),
    "retired": _l("Retire"),
    "disposed": _l("Dispose"),
}
CRITICALITY_LABELS = {"low": _l("Low"), "medium": _l("Medium"), "high": _l("High"), "critical": _l("Critical")}
CATEGORY_LABELS = {
    "hardware": _l("Hardware"),
    "software": _l("Software"),
    "cloud": _l("Cloud"),
    "mobile": _l("Mobile"),
    "network": _l("Network"),
    "service": _l("Services"),
}
CLASS_LABELS = {
    "server": _l("Server"),
    "virtual_machine": _l("Virtual machine"),
    "container": _l("Container"),
    "laptop": _l("Laptop"),
    "desktop": _l("Desktop"),
    "mobile_phone": _l("Mobile phone"),
    "tablet": _l("Tablet"),
    "printer": _l("Printer"),
    "network_switch": _l("Network switch"),
    "router": _l("Router"),
    "firewall": _l("Firewall"),
    "access_point": _l("Wireless access point"),
    "load_balancer": _l("Load balancer"),
    "storage": _l("Storage array"),
    "database": _l("Database"),
    "application": _l("Application"),
    "software": _l("Software product"),
    "cloud_account": _l("Cloud account"),
    "cloud_service": _l("Cloud service"),
    "business_service": _l("Business service"),
    "cluster": _l("Cluster"),
    "rack": _l("Rack"),
    "pdu": _l("Power distribution unit"),
    "ups": _l("Uninterruptible power supply"),
}
ATTRIBUTE_LABELS = {
    "hostname": _l("Host name"),
    "fqdn": _l("Fully qualified domain name"),
    "ip_addresses": _l("IP addresses"),
    "mac_addresses": _l("MAC addresses"),
    "os": _l("Operating system"),
    "os_version": _l("OS version"),
    "cpu_cores": _l("CPU cores"),
    "ram_gb": _l("Memory (GB)"),
    "disk_gb": _l("Disk (GB)"),
    "rack_units": _l("Rack units"),
    "is_hypervisor": _l("Hypervisor"),
    "hypervisor_type": _l("Hypervisor type"),
    "image": _l("Image"),
    "image_tag": _l("Image tag"),
    "orchestrator": _l("Orchestrator"),
    "namespace": _l("Namespace"),
    "encrypted": _l("Encrypted"),
    "last_seen": _l("Last seen"),
    "imei": _l("IMEI"),
    "phone_number": _l("Phone number"),
    "mdm_enrolled": _l("Enrolled in MDM"),
    "color": _l("Colour"),
    "duplex": _l("Duplex"),
    "pages_per_minute": _l("Pages per minute"),
    "management_ip": _l("Management IP"),
    "firmware_version": _l("Firmware version"),
    "port_count": _l("Ports"),
    "layer": _l("Network layer"),
    "asn": _l("AS number"),
    "throughput_mbps": _l("Throughput (Mbit/s)"),
    "ha_mode": _l("High availability"),
    "ssids": _l("SSIDs"),
    "band": _l("Band"),
    "virtual_ips": _l("Virtual IPs"),
    "capacity_tb": _l("Capacity (TB)"),
    "raid_level": _l("RAID level"),
    "protocol": _l("Protocol"),
    "engine": _l("Engine"),
    "engine_version": _l("Engine version"),
    "port": _l("Port"),
    "instance_name": _l("Instance name"),
    "size_gb": _l("Size (GB)"),
    "version": _l("Version"),
    "url": _l("Address (URL)"),
    "environment": _l("Environment"),
    "language": _l("Language"),
    "publisher": _l("Publisher"),
    "eol_date": _l("End of life"),
    "edition": _l("Edition"),
    "provider": _l("Provider"),
    "account_id": _l("Account id"),
    "billing_contact": _l("Billing contact"),
    "region": _l("Region"),
    "resource_id": _l("Resource id"),
    "service_type": _l("Service type"),
    "sla_tier": _l("SLA tier"),
    "customer_facing": _l("Customer facing"),
    "business_hours": _l("Business hours"),
    "rto_minutes": _l("Recovery time objective (minutes)"),
    "rpo_minutes": _l("Recovery point objective (minutes)"),
    "min_members_up": _l("Members needed up"),
    "cluster_type": _l("Cluster type"),
    "units": _l("Units"),
    "max_power_kw": _l("Maximum power (kW)"),
    "rated_kw": _l("Rated power (kW)"),
    "outlets": _l("Outlets"),
}
# Whole numbers that are identifiers, shown without thousands separators.
PLAIN_NUMBERS = frozenset({"port", "asn"})
KIND_LABELS = {
    "": _l("Everything"),
    "change": _l("Changes"),
    "relationship": _l("Relationships"),
    "ticket": _l("Tickets"),
    "assignment": _l("Assignments"),
}
WARRANTY_CHOICES = {
    "": _l("Any"),
    "expired": _l("Expired"),
    "expiring": _l("Expiring soon"),
    "covered": _l("Under warranty"),
}


def class_label(name: str) -> str:
    if name in CLASS_LABELS:
        return str(CLASS_LABELS[name])
    found = REGISTRY.get(name)
    return found.label if found else name


def _labels() -> dict:
    """What every CI template uses to name things."""
    return {
        "status_labels": STATUS_LABELS,
        "criticality_labels": CRITICALITY_LABELS,
        "class_label": class_label,
        "kind_labels": KIND_LABELS,
        "duration": lambda seconds: format_timedelta(timedelta(seconds=seconds), threshold=1.1),
    }


def _today() -> date:
    return to_user_timezone(utcnow()).date()


def _is_htmx(target: str) -> bool:
    """An htmx request that swaps ``target`` (a history restore wants the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and not request.headers.get("HX-History-Restore-Request")
        and request.headers.get("HX-Target") == target
    )


def _vary(response):
    response.headers.add("Vary", "HX-Request")
    return response


# ---------------------------------------------------------------------------------------------
# The list


def _several(args, key: str) -> list[str]:
    """``key=a&key=b`` and ``key=a,b`` alike, blanks dropped, order kept."""
    values: list[str] = []
    for raw in args.getlist(key):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return list(dict.fromkeys(values))[:50]


def _list_form(args) -> dict:
    """What the filter form shows: the query string as the user wrote it (trimmed, bounded)."""
    form = {key: (args.get(key) or "").strip()[:200] for key in ("q", "owner_team_id", "location_id", "warranty")}
    form["within"] = (args.get("within") or "").strip()[:12]
    form["ci_class"] = _several(args, "ci_class")
    form["status"] = _several(args, "status")
    form["sort"] = (args.get("sort") or "").strip()[:100]
    # every other filter of the API's list (a saved view may hold them): kept as given, shown as chips
    form["extra"] = {key: args.get(key).strip()[:200] for key in EXTRA_FILTERS if (args.get(key) or "").strip()}
    # custom field filters (cf_<name>), with the one the form's picker adds
    form["custom"], form["cf_added"] = list_filter_args(args)
    form["cf_picking"] = bool((args.get(ADD_FIELD) or "").strip()) and not form["cf_added"]
    return form


def _list_filters(form: dict) -> tuple[dict, dict[str, list[str]]]:
    """The filters of ``cmdb.services.search_cis`` (validated by the API's query schema) and the
    errors of what was left out."""
    data: dict = {**form["extra"], **form["custom"]}
    for key in ("q", "owner_team_id", "location_id", "sort"):
        if form[key]:
            data[key] = form[key]
    for key in ("ci_class", "status"):
        if form[key]:
            data[key] = ",".join(form[key])
    errors: dict[str, list[str]] = {}
    today = _today()
    warranty = form["warranty"]
    within = WARRANTY_DAYS
    if form["within"]:
        days = form_int(form["within"])
        if days is not None and 1 <= days <= MAX_WARRANTY_DAYS:
            within = days
        else:
            errors["within"] = [_("A number of days from 1 to %(most)d.", most=MAX_WARRANTY_DAYS)]
    if warranty == "expired":
        data["warranty_expires_before"] = today.isoformat()
    elif warranty == "expiring":
        data["warranty_expires_after"] = (today - timedelta(days=1)).isoformat()
        data["warranty_expires_before"] = (today + timedelta(days=within + 1)).isoformat()
    elif warranty == "covered":
        data["warranty_expires_after"] = (today - timedelta(days=1)).isoformat()
    elif warranty:
        errors["warranty"] = [_("Not a warranty filter.")]
    schema = CIQuerySchema()
    try:
        return schema.load(data), errors
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        for key, value in messages.items():
            errors[key] = _flat(value)[:3]
        kept = {key: value for key, value in data.items() if key not in messages}
        try:
            return schema.load(kept), errors
        except ma.ValidationError:
            return {}, errors


def _flat(messages) -> list[str]:
    """Marshmallow's messages for a field (a list, or a dict by list index) as one list of text."""
    if isinstance(messages, dict):
        return [text for value in messages.values() for text in _flat(value)]
    if isinstance(messages, (list, tuple)):
        return [text for value in messages for text in _flat(value)]
    return [str(messages)]


def _locations() -> dict[int, str]:
    """Location id -> its path (site › building › floor › room), from one query, for the filter and
    the list's location column."""
    rows = db.session.execute(
        select(Location.id, Location.name, Location.parent_id).order_by(Location.id).limit(LOCATIONS_OFFERED)
    ).all()
    parents = {row.id: (row.name, row.parent_id) for row in rows}
    paths: dict[int, str] = {}
    for location_id in parents:
        parts, node, seen = [], location_id, set()
        while node in parents and node not in seen:
            seen.add(node)
            name, node = parents[node]
            parts.append(name)
        paths[location_id] = " › ".join(reversed(parts))
    return dict(sorted(paths.items(), key=lambda item: item[1].lower()))


def _teams() -> list[tuple[int, str]]:
    return list(db.session.execute(select(Team.id, Team.name).order_by(Team.name).limit(TEAMS_OFFERED)).tuples())


def _query_args(form: dict, **overrides) -> dict:
    """The list's query string for ``url_for`` (blank values left out)."""
    args = {
        "q": form["q"],
        "ci_class": ",".join(form["ci_class"]),
        "status": ",".join(form["status"]),
        "owner_team_id": form["owner_team_id"],
        "location_id": form["location_id"],
        "warranty": form["warranty"],
        "within": form["within"] if form["warranty"] == "expiring" else "",
        "sort": form["sort"],
        **form["extra"],
        **form["custom"],
    }
    args.update(overrides)
    return {key: value for key, value in args.items() if value not in ("", None)}


def _views_context(form: dict) -> ViewsBar:
    """The saved-views bar: what saving would save (the form's filters as the API takes them; the
    warranty filter is relative to today and stays out), and how to drop a filter a view added."""
    saved = {
        "q": form["q"],
        "ci_class": ",".join(form["ci_class"]),
        "status": ",".join(form["status"]),
        "owner_team_id": form["owner_team_id"],
        "location_id": form["location_id"],
        **form["extra"],
        **form["custom"],
    }
    return views_context(
        "cis", saved, form["sort"], form["extra"], lambda key: url_for("web.cis", **_query_args(form, **{key: ""}))
    )


def _custom_filters(form: dict, errors: dict) -> dict:
    """The list's custom field filters as chips, the picker's fields (those of the classes filtered
    by, else every CI field) and the columns they add; ``oob``: the fragment redraws them (not while
    a field is picked and its value not yet typed)."""
    return {
        "chips": filter_chips(
            form["custom"], errors, form["sort"], lambda key: url_for("web.cis", **_query_args(form, **{key: ""}))
        ),
        "picker": picker_fields("ci", form["ci_class"]),
        "columns": list_columns(form["custom"], form["sort"]),
        "oob": not form["cf_picking"],
    }


@bp.get("/cis")
@page(*STAFF)
def cis():
    """Every CI the user may see, filtered by class, status, owner team, location (and what is inside
    it), warranty and text; sorted; paged; the whole state in the URL."""
    form = _list_form(request.args)
    if form["cf_added"] and not _is_htmx("ci-results"):  # the picker without JavaScript: the list's own URL
        return redirect(url_for("web.cis", **_query_args(form)))
    filters, errors = _list_filters(form)
    stmt = search_cis(filters, g.user)
    total = count_of(stmt)
    pages = max(1, -(-total // PAGE_SIZE))
    requested = request.args.get("page", type=int) or 1
    page_number = min(max(1, requested), pages)
    rows = list(db.session.scalars(stmt.offset((page_number - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    locations = _locations()
    sort = (filters.get("sort") or ["name"])[0]
    context = {
        "form": form,
        "views_ctx": _views_context(form),
        "errors": errors,
        "rows": rows,
        "total": total,
        "page_number": page_number,
        "pages": pages,
        "sort": sort,
        "query_args": lambda **overrides: _query_args(form, **overrides),
        "locations": locations,
        "today": _today(),
        "warranty_days": WARRANTY_DAYS,
        "cf": _custom_filters(form, errors),
        "cf_cell": cell,
        **_labels(),
    }
    status = 422 if errors else 200
    if _is_htmx("ci-results"):
        # 200 even with errors: htmx swaps only successful answers, and the errors are in the fragment
        response = Response(render_template("cis/_results.html", oob=True, **context))
        # the address bar shows the list's own URL, without the form's blank fields
        response.headers["HX-Push-Url"] = url_for(
            "web.cis", **_query_args(form, page=page_number if page_number > 1 else "")
        )
        return _vary(response)
    context.update(
        teams=_teams(),
        categories=[
            (c, CATEGORY_LABELS.get(c, c), [n for n, k in REGISTRY.items() if k.category == c]) for c in CATEGORIES
        ],
        statuses=STATUSES,
        warranty_choices=WARRANTY_CHOICES,
        max_warranty_days=MAX_WARRANTY_DAYS,
        breadcrumbs=[(_("CIs"), None)],
    )
    return _vary(Response(render_template("cis/list.html", **context), status=status))


@bp.get("/cis/export.csv")
@page(*STAFF)
def cis_export():
    """The list's CIs (same filters, every page) as CSV, through the API's exporter: attributes as
    ``attributes.<name>`` columns, no cell a spreadsheet would run as a formula."""
    form = _list_form(request.args)
    filters, errors = _list_filters(form)
    if errors:
        raise Invalid(_("Some filters are invalid; fix them on the list first."), errors=errors)
    stmt = search_cis(filters, g.user)
    name = f"cis-{_today().isoformat()}.csv"
    return Response(
        stream_with_context(export.iter_csv(stmt, filters.get("ci_class"))),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"},
    )


# ---------------------------------------------------------------------------------------------
# The CI page


def _attributes(ci: ConfigurationItem) -> list[dict]:
    """The class's attributes in the schema's order: label, how to show the value, the value."""
    found = REGISTRY.get(ci.ci_class)
    values = ci.attributes or {}
    if found is None:
        return [{"name": k, "label": k, "type": "text", "value": v} for k, v in sorted(values.items())]
    shown = []
    for name, field in found.attributes._declared_fields.items():
        value = values.get(name)
        if isinstance(field, ma.fields.Boolean):
            kind = "bool"
        elif isinstance(field, ma.fields.Date):
            kind = "date"
            try:
                value = date.fromisoformat(value) if isinstance(value, str) else value
            except ValueError:
                kind = "text"
        elif isinstance(field, (ma.fields.Integer, ma.fields.Float)):
            kind = "plain" if name in PLAIN_NUMBERS else "number"
        elif isinstance(field, ma.fields.List):
            kind = "list"
        elif isinstance(field, ma.fields.Url):
            kind = "url" if isinstance(value, str) and value.startswith(("https://", "http://")) else "text"
        elif isinstance(field, ma.fields.Email):
            kind = "email"
        else:
            kind = "text"
        label = ATTRIBUTE_LABELS.get(name) or name.replace("_", " ").capitalize()
        shown.append({"name": name, "label": label, "type": kind, "value": value})
    return shown


def _relationships(ci: ConfigurationItem) -> dict:
    """Open relationships both ways, a bounded number each, with the type's label read from this CI's
    side (outgoing: "Runs on", incoming: "Runs")."""
    types = {t.name: t for t in relationship_types()}
    answer = {}
    for direction, key in (("outgoing", "source_id"), ("incoming", "target_id")):
        stmt = search_relationships({key: ci.id})
        rows = list(db.session.scalars(stmt.limit(RELATIONSHIPS_SHOWN + 1)))
        more = count_of(stmt) - RELATIONSHIPS_SHOWN if len(rows) > RELATIONSHIPS_SHOWN else 0
        items = []
        for rel in rows[:RELATIONSHIPS_SHOWN]:
            kind = types.get(rel.type)
            other = rel.target if direction == "outgoing" else rel.source
            if kind is None:
                label = rel.type
            else:
                label = kind.label if direction == "outgoing" else kind.reverse_label
            items.append({"rel": rel, "label": label, "other": other})
        items.sort(key=lambda item: (str(item["label"]).lower(), item["other"].name.lower()))
        answer[direction] = {"items": items, "more": more}
    return answer


CRITICALITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _dependents(ci: ConfigurationItem) -> dict | None:
    """What fails with this CI within IMPACT_DEPTH hops: counts and the few that matter most
    (business services first, then down before degraded, nearer and more critical first)."""
    try:
        result = impact([ci.id], max_depth=IMPACT_DEPTH)
    except DomainError:
        return None
    down = sum(1 for item in result.impacted if item.state == "down")
    services = [item for item in result.impacted if item.ci_class == "business_service"]
    ranked = sorted(
        result.impacted,
        key=lambda i: (
            i.ci_class != "business_service",
            i.state != "down",
            i.depth,
            CRITICALITY_ORDER.get(i.criticality, 9),
            i.ci_id,
        ),
    )
    return {
        "down": down,
        "degraded": len(result.impacted) - down,
        "services": len(services),
        "top": ranked[:IMPACT_LISTED],
        "depth": IMPACT_DEPTH,
    }


def _tickets(ci: ConfigurationItem) -> dict:
    """The CI's open tickets (most urgent first) and its latest finished ones."""
    stmt = tickets_of_ci(ci.id, g.user)
    open_ = list(db.session.scalars(stmt.where(Ticket.state.not_in(DONE_STATES)).limit(TICKETS_SHOWN + 1)))
    done = stmt.where(Ticket.state.in_(DONE_STATES)).order_by(None).order_by(Ticket.created_at.desc(), Ticket.id.desc())
    past = list(db.session.scalars(done.limit(TICKETS_SHOWN + 1)))
    return {
        "open": open_[:TICKETS_SHOWN],
        "open_more": len(open_) > TICKETS_SHOWN,
        "past": past[:TICKETS_SHOWN],
        "past_more": len(past) > TICKETS_SHOWN,
    }


def _timeline_args() -> tuple[str, str | None]:
    kind = (request.args.get("kind") or "").strip()
    before = (request.args.get("before") or "").strip()[:64] or None
    return kind, before


def _timeline(ci: ConfigurationItem, kind: str, before: str | None) -> dict:
    """A page of the CI's timeline for the page or its fragment; a bad kind or position shows an
    error with the first page of everything."""
    error = None
    try:
        if kind and kind not in KINDS:
            raise Invalid(_("Not a kind of timeline entry."), errors={"kind": [_("Choose one of the list.")]})
        timeline = timeline_of(ci, g.user, kinds=[kind] if kind else None, before=before, limit=TIMELINE_SIZE)
    except Invalid as exc:
        error = exc.detail
        kind, before = "", None
        timeline = timeline_of(ci, g.user, limit=TIMELINE_SIZE)
    names = _names(timeline.entries)
    return {
        "timeline": timeline,
        "kind": kind,
        "before": before,
        "timeline_error": error,
        "change_lines": lambda change: _change_lines(change, names),
    }


FIELD_LABELS = {
    "name": _l("Name"),
    "ci_class": _l("Class"),
    "status": _l("Status"),
    "criticality": _l("Criticality"),
    "asset_tag": _l("Asset tag"),
    "serial_number": _l("Serial number"),
    "vendor": _l("Vendor"),
    "model": _l("Model"),
    "description": _l("Description"),
    "owner_team_id": _l("Owner team"),
    "assigned_to_id": _l("Holder"),
    "location_id": _l("Location"),
    "purchase_date": _l("Purchase date"),
    "purchase_cost": _l("Purchase cost"),
    "currency": _l("Currency"),
    "warranty_expires": _l("Warranty until"),
    "attributes": _l("Attributes"),
}
_REFERENCES = {"owner_team_id": Team, "assigned_to_id": User, "location_id": Location}
SHOWN_VALUE = 160


def _names(entries) -> dict[str, dict[int, str]]:
    """The names of the teams, people and locations that a page of CI changes refers to by id (a
    query per kind, for the page's ids only)."""
    wanted: dict[str, set[int]] = {key: set() for key in _REFERENCES}
    for entry in entries:
        if entry.change is None or entry.change.object_type != "ci":
            continue
        for key in _REFERENCES:
            pair = (entry.change.changes or {}).get(key)
            if isinstance(pair, list):
                wanted[key].update(v for v in pair if isinstance(v, int))
    names: dict[str, dict[int, str]] = {}
    for key, model in _REFERENCES.items():
        ids = [i for i in wanted[key] if 0 < i <= MAX_ID]
        if not ids:
            names[key] = {}
            continue
        label = func.coalesce(func.nullif(model.name, ""), model.email) if model is User else model.name
        names[key] = dict(db.session.execute(select(model.id, label).where(model.id.in_(ids))).tuples().all())
    return names


def _shown(field: str, value, names: dict) -> str:
    """A value of a change as a person reads it: names for ids, labels for codes, bounded length."""
    if value is None or value == "":
        return "—"
    if field in _REFERENCES and isinstance(value, int):
        return names.get(field, {}).get(value) or f"#{value}"
    if field == "status":
        return str(STATUS_LABELS.get(value, value))
    if field == "ci_class":
        return class_label(value)
    if field == "criticality":
        return str(CRITICALITY_LABELS.get(value, value))
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 1] + "…"


def _change_lines(change, names: dict) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field a change-log row records; a CI's attributes one by one."""
    lines: list[tuple[str, str, str]] = []
    for field, pair in (change.changes or {}).items():
        label = str(FIELD_LABELS.get(field) or field.replace("_", " ").capitalize())
        if not (isinstance(pair, list) and len(pair) == 2):
            lines.append((label, "", _shown(field, pair, names)))
            continue
        before, after = pair
        if field == "attributes" and isinstance(before or {}, dict) and isinstance(after or {}, dict):
            before, after = before or {}, after or {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    name = str(ATTRIBUTE_LABELS.get(key) or key.replace("_", " ").capitalize())
                    lines.append(
                        (f"{label} · {name}", _shown(key, before.get(key), names), _shown(key, after.get(key), names))
                    )
            continue
        lines.append((label, _shown(field, before, names), _shown(field, after, names)))
    return lines


def _warranty_state(ci: ConfigurationItem, today: date) -> str | None:
    if ci.warranty_expires is None:
        return None
    if ci.warranty_expires < today:
        return "expired"
    if ci.warranty_expires <= today + timedelta(days=WARRANTY_DAYS):
        return "expiring"
    return "covered"


def _render_ci(ci: ConfigurationItem, status: int = 200):
    kind, before = _timeline_args()
    today = _today()
    holder = ci.assigned_to
    assignments = assignments_of(ci)
    context = {
        "ci": ci,
        "class_name": class_label(ci.ci_class),
        "attributes": _attributes(ci),
        "custom_groups": value_groups("ci", ci.ci_class, ci.custom_fields),
        "can_move": g.user.role in MOVERS,
        "moves": allowed_moves(ci.status),
        "move_labels": MOVE_LABELS,
        "holder": holder,
        "location_path": ci.location.path if ci.location is not None else None,
        "assignments": assignments[:ASSIGNMENTS_SHOWN],
        "assignments_more": max(0, len(assignments) - ASSIGNMENTS_SHOWN),
        "relationships": _relationships(ci),
        "tickets": _tickets(ci),
        "figures": ci_figures(ci.id),
        "dependents": _dependents(ci),
        "warranty_state": _warranty_state(ci, today),
        "today": today,
        "errors": field_errors(),
        "breadcrumbs": [(_("CIs"), url_for("web.cis")), (ci.name, None)],
        **_timeline(ci, kind, before),
        **_labels(),
    }
    return _vary(Response(render_template("cis/page.html", **context), status=status))


@bp.get("/cis/<int:ci_id>")
@page(*STAFF)
def ci(ci_id: int):
    return _render_ci(get_ci(ci_id, g.user))


@bp.get("/cis/<int:ci_id>/timeline")
@page(*STAFF)
def ci_timeline(ci_id: int):
    """The timeline alone, for htmx (its kind filter and pager); a browser without it gets the page."""
    found = get_ci(ci_id, g.user)
    kind, before = _timeline_args()
    if not _is_htmx("timeline-entries"):
        args = {key: value for key, value in (("kind", kind), ("before", before)) if value}
        return redirect(url_for("web.ci", ci_id=found.id, _anchor="timeline", **args))
    context = {"ci": found, **_timeline(found, kind, before), **_labels()}
    response = Response(render_template("cis/_timeline.html", **context))
    shown = {key: value for key, value in (("kind", context["kind"]), ("before", context["before"])) if value}
    response.headers["HX-Push-Url"] = url_for("web.ci", ci_id=found.id, **shown)
    return _vary(response)


@bp.post("/cis/<int:ci_id>/move")
@page(*MOVERS)
def ci_move(ci_id: int):
    """Move the CI to another lifecycle status, through the same service and checks as PATCH /cis/{id}:
    only legal moves, a disposal needs its wipe record, a retired CI is held by no one. A form from
    before somebody else changed the CI is refused (409) rather than applied to what it did not show."""
    found = get_ci(ci_id, g.user, for_update=True)
    target = (request.form.get("status") or "").strip()
    try:
        if not target:
            raise Invalid(_("Choose the status to move to."), errors={"status": [_("Required.")]})
        data = load(CIUpdateSchema(), {"status": target})
        version = (request.form.get("version") or "").strip()
        if version and version != str(found.version):
            raise Conflict(_("Somebody changed this CI since you opened it; look again and retry."))
        previous = found.status
        update_ci(found, data)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _render_ci(get_ci(ci_id, g.user), error.status)
    before, after = (STATUS_LABELS.get(status, status) for status in (previous, found.status))
    if previous == found.status:
        flash(_("%(name)s is already %(status)s.", name=found.name, status=after), "info")
    else:
        flash(_("%(name)s moved from %(before)s to %(after)s.", name=found.name, before=before, after=after), "success")
    return redirect(url_for("web.ci", ci_id=found.id))
