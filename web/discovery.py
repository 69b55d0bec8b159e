"""Discovery: the sources that feed the CMDB (discovery API feeds, inventory-agent sites, nmap
scans) with their last runs, what each run changed, the conflicts waiting for a person and the
devices a scan found that the CMDB does not know.

Staff read it; CMDB writers settle what it lists: accept a discovered value that a manual edit held
back (integrations.discovery.accept_held), add an unmanaged host to the CMDB
(integrations.agents.nmap.adopt_host). Both go through the services the API uses.
"""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from cairn.auth import roles
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import DomainError
from integrations import discovery
from integrations.agents import nmap
from integrations.sync import overview
from web.blueprint import bp
from web.forms import flash_refusal, form_int

READERS = tuple(r for r in roles.STAFF_READERS if r != roles.INTEGRATION)
WRITERS = tuple(r for r in roles.CMDB_WRITERS if r != roles.INTEGRATION)
PER_PAGE = 50
MAX_PAGE = 10_000
RECENT_RUNS = 10
DISCOVERY_STATUSES = ("created", "updated", "unchanged", "held", "ambiguous", "error")
SCAN_STATUSES = ("matched", "unmanaged", "added", "ambiguous")
KIND_LABELS = {"agents": _l("Inventory agents"), "nmap": _l("nmap scans"), "api": _l("Discovery API")}
STATUS_LABELS = {
    "created": _l("created"),
    "updated": _l("updated"),
    "unchanged": _l("unchanged"),
    "held": _l("held back"),
    "ambiguous": _l("ambiguous"),
    "error": _l("error"),
    "matched": _l("matched"),
    "unmanaged": _l("unmanaged"),
    "added": _l("added"),
    "hosts": _l("hosts"),
    "items": _l("items"),
}


def _render(template: str, status: int = 200, **context):
    from web.cis import class_label

    labels = {
        "kind_labels": KIND_LABELS,
        "status_labels": STATUS_LABELS,
        "can_write": _can_write(),
        "class_label": class_label,
        "kind_of": overview.kind_of,
    }
    return render_template(template, **labels, **context), status


def _can_write() -> bool:
    user = g.get("user")
    return user is not None and user.role in WRITERS


def _crumbs(*trail) -> list:
    return [(_("Discovery"), url_for("web.discovery_home")), *trail]


def _page_number() -> int:
    return min(max(1, form_int(request.args.get("page")) or 1), MAX_PAGE)


def _run_or_404(run_id: int):
    return discovery.get_job(run_id, overview.RUN_KINDS)


@bp.get("/discovery")
@page(*READERS)
def discovery_home():
    sources = overview.sources()
    conflicts, conflict_count = overview.conflicts()
    hosts, host_count = overview.unmanaged()
    recent, more_runs = overview.runs(page=1, per_page=RECENT_RUNS)
    figures = {
        "sources": len(sources),
        "runs_today": overview.runs_since(24),
        "conflicts": conflict_count,
        "unmanaged": host_count,
    }
    return _render(
        "discovery/index.html",
        sources=sources,
        conflicts=conflicts,
        conflict_count=conflict_count,
        hosts=hosts,
        host_count=host_count,
        recent=recent,
        more_runs=more_runs,
        figures=figures,
        classes=nmap.addressable_classes(),
        breadcrumbs=[(_("Discovery"), None)],
    )


@bp.get("/discovery/runs")
@page(*READERS)
def discovery_runs():
    source = (request.args.get("source") or "").strip()[:100]
    kind = request.args.get("kind") if request.args.get("kind") in overview.RUN_KINDS else ""
    number = _page_number()
    rows, more = overview.runs(source, kind, number, PER_PAGE)
    return _render(
        "discovery/runs.html",
        runs=rows,
        more=more,
        page_number=number,
        source=source,
        kind=kind,
        breadcrumbs=_crumbs((_("Runs"), None)),
    )


@bp.get("/discovery/runs/<int:run_id>")
@page(*READERS)
def discovery_run(run_id: int):
    job = _run_or_404(run_id)
    statuses = SCAN_STATUSES if job.kind == "nmap" else DISCOVERY_STATUSES
    status = request.args.get("status") if request.args.get("status") in statuses else ""
    number = _page_number()
    results, more, cis = overview.run_results(job, status, number, PER_PAGE)
    tab_counts = {s: 0 for s in statuses}
    for result in job.results or []:
        if result.get("held"):
            tab_counts["held"] = tab_counts.get("held", 0) + 1
        if result.get("status") in tab_counts:
            tab_counts[result["status"]] += 1
    return _render(
        "discovery/run.html",
        job=job,
        source_kind=overview.kind_of(job.source),
        results=results,
        cis=cis,
        more=more,
        page_number=number,
        statuses=statuses,
        shown_status=status,
        tab_counts=tab_counts,
        listed=len(job.results or []),
        classes=nmap.addressable_classes(),
        breadcrumbs=_crumbs((_("Runs"), url_for("web.discovery_runs")), (_("Run %(id)d", id=job.id), None)),
    )


@bp.get("/discovery/devices")
@page(*READERS)
def discovery_devices():
    site = (request.args.get("site") or "").strip()[:60]
    number = _page_number()
    rows, more, cis, users = overview.devices(site, number, PER_PAGE)
    return _render(
        "discovery/devices.html",
        devices=rows,
        cis=cis,
        users=users,
        more=more,
        page_number=number,
        site=site,
        breadcrumbs=_crumbs((_("Devices reported by agents"), None)),
    )


def _back(run_id: int):
    """Where a settling form returns: the run's page when it was sent from there, else the overview."""
    if request.form.get("back") == "run":
        return redirect(url_for("web.discovery_run", run_id=run_id, status=request.form.get("status") or None))
    return redirect(url_for("web.discovery_home", _anchor=request.form.get("anchor") or None))


def _settle(run_id: int, act, done: str):
    """Run a settling action of run ``run_id`` (404 when there is no such run): refused, say why;
    done, commit and say ``done`` (formatted with the CI's name); back where the form was sent from."""
    _run_or_404(run_id)
    try:
        ci = act()
    except DomainError as error:
        flash_refusal(error)
        return _back(run_id)
    db.session.commit()
    flash(done % {"name": ci.name}, "success")
    return _back(run_id)


@bp.post("/discovery/runs/<int:run_id>/held/<int:number>/accept")
@page(*WRITERS)
def discovery_accept(run_id: int, number: int):
    """Accept the values item ``number`` (1-based, as the run page counts) held back."""
    return _settle(
        run_id, lambda: discovery.accept_held(run_id, number - 1), _("The discovered values are now %(name)s's.")
    )


@bp.post("/discovery/runs/<int:run_id>/hosts/<int:number>/add")
@page(*WRITERS)
def discovery_add_host(run_id: int, number: int):
    """Add host ``number`` (1-based) of a scan to the CMDB."""
    ci_class, name = request.form.get("ci_class") or "", request.form.get("name") or ""
    added = _("%(name)s is now in the CMDB.")
    return _settle(run_id, lambda: nmap.adopt_host(run_id, number - 1, ci_class, name), added)
