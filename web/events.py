"""The event console: firing monitoring alerts, grouped by the incident their correlation opened
(root cause, the rule that chose it, the reasoning), each group by CI; alerts suppressed into a
change's maintenance window; alerts no binding rule tied to a CI. And the alerts of one incident,
as a fragment the ticket page loads."""

from __future__ import annotations

from collections import defaultdict

from flask import g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from cairn.auth import roles
from cairn.auth.sessions import page
from integrations.events import services
from tickets import services as tickets
from web.blueprint import bp

READERS = tuple(r for r in roles.STAFF_READERS if r != roles.INTEGRATION)
RULE_LABELS = {
    "single_ci": _l("one alerting CI"),
    "alerting_ancestor": _l("alerting CI the others depend on"),
    "widest_blast_radius": _l("widest blast radius"),
}


def _by_ci(alerts, cis, root: int | None = None) -> list[dict]:
    """The alerts by CI: the root cause's first, then by CI name."""
    rows: dict[int | None, list] = defaultdict(list)
    for alert in alerts:
        rows[alert.ci_id].append(alert)
    ordered = sorted(
        rows.items(), key=lambda item: (item[0] != root, cis[item[0]].name if item[0] in cis else "", item[0] or 0)
    )
    return [{"ci": cis.get(ci_id), "alerts": found} for ci_id, found in ordered]


@bp.get("/events")
@page(*READERS)
def events_console():
    view = services.console()
    firing, groups, cis, by_ticket = view["firing"], view["groups"], view["cis"], view["tickets"]
    grouped: dict[int, list] = defaultdict(list)
    suppressed: dict[int, list] = defaultdict(list)
    unbound = []
    for alert in firing:
        if alert.group_id in groups and alert.disposition == "correlated":
            grouped[alert.group_id].append(alert)
        elif alert.disposition == "maintenance" and alert.ticket_id:
            suppressed[alert.ticket_id].append(alert)
        elif alert.ci_id is None:
            unbound.append(alert)
    incidents = [
        {
            "group": groups[group_id],
            "ticket": by_ticket.get(groups[group_id].ticket_id),
            "root": cis.get(groups[group_id].root_ci_id),
            "cis": _by_ci(alerts, cis, groups[group_id].root_ci_id),
            "count": len(alerts),
        }
        for group_id, alerts in sorted(grouped.items(), key=lambda item: -len(item[1]))
    ]
    changes = [{"ticket": by_ticket.get(tid), "cis": _by_ci(a, cis), "count": len(a)} for tid, a in suppressed.items()]
    figures = {
        "firing": view["counts"].get("firing", 0),
        "incidents": len(incidents),
        "suppressed": sum(c["count"] for c in changes),
        "unbound": len(unbound),
    }
    return render_template(
        "events/console.html",
        incidents=incidents,
        changes=changes,
        unbound=unbound,
        figures=figures,
        rule_labels=RULE_LABELS,
        breadcrumbs=[(_l("Events"), None)],
    )


@bp.get("/tickets/<int:ticket_id>/events")
@page(*READERS)
def ticket_events(ticket_id: int):
    """The monitoring alerts of an incident (or of a change that suppressed them), as a fragment."""
    ticket = tickets.get_ticket(ticket_id, g.user)
    if request.headers.get("HX-Request") != "true":
        return redirect(url_for("web.ticket", ticket_id=ticket_id, _anchor="events"))
    answer = services.ticket_events(ticket, limit=500)
    cis = services.cis_by_id({e.ci_id for e in answer["events"] if e.ci_id} | {x.root_ci_id for x in answer["groups"]})
    return render_template(
        "events/_ticket_events.html",
        ticket=ticket,
        groups=answer["groups"],
        rows=_by_ci(answer["events"], cis, answer["groups"][-1].root_ci_id if answer["groups"] else None),
        count=len(answer["events"]),
        firing=sum(1 for e in answer["events"] if e.status == "firing"),
        cis=cis,
        rule_labels=RULE_LABELS,
    )
