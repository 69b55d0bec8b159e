"""The impact map: what goes down when one or more CIs fail, drawn with Cytoscape.js (laid out with
dagre, left to right: the failed CIs on the left, the business services on the right), with the same
answer as a sortable table beside it (the accessible alternative to the canvas) and its exports.

Every answer is the relations service's (``relations.services.impact``, the ``POST /impact`` of the
API) as ``impact_document`` shows it to the viewer; this module only arranges it for drawing. A big
answer (over ``GROUP_OVER`` CIs) is drawn as groups (by class or by hops from the failure) that
expand on click, a bounded number of members at a time: the browser never lays out thousands.

Pages:
- ``/impact?ci=<id>&ci=<id>&as_of=&group=&sort=&page=&spof=&from=&to=``: the whole page; the
  what-if picker adds CIs to the failure set (the state is the URL);
- ``/impact/map.json``: the map's Cytoscape elements (the CI and ticket pages draw it too);
- ``/impact/group.json``: the members of one group, to expand it;
- ``/impact/export.<csv|graphml|dot|json>``: the answer as a file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Response, g, redirect, render_template, request, url_for
from flask_babel import format_decimal, get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from cairn.auth.models import Team
from cairn.auth.sessions import page
from cairn.db import MAX_ID, db, id_in, utcnow
from cairn.errors import DomainError, Invalid, NotFound
from cairn.safe_output import SafeCSVWriter
from cmdb.models import ConfigurationItem
from cmdb.services import get_ci, search_cis
from integrations.events.services import firing_by_ci
from relations import export
from relations.services import (
    cluster_health,
    impact,
    impact_document,
    impact_links,
    shortest_path,
    single_points_of_failure,
)
from tickets.services import get_ticket
from web.blueprint import bp
from web.cis import class_label
from web.forms import field_errors, is_number, keep_errors
from web.shell import STAFF

GROUP_OVER = 150  # more impacted CIs than this: the map draws groups, not CIs
MEMBERS_SHOWN = 80  # a group expands to at most this many of its CIs
SERVICES_APART = 60  # business services drawn one by one on a grouped map, up to this many
TABLE_ROWS = 50
MAX_FAILED = 50  # CIs in a what-if failure set (the URL holds them)
TICKETS_PER_CI = 5
TEXT_MAX = 200
GROUPINGS = {"class": _l("Class"), "depth": _l("Hops from the failure")}
STATE_LABELS = {"failed": _l("failed"), "down": _l("down"), "degraded": _l("degraded")}
SORTS = ("depth", "name", "class", "state", "criticality")
SORT_LABELS = {
    "name": _l("CI"),
    "class": _l("Class"),
    "state": _l("State"),
    "depth": _l("Hops"),
    "criticality": _l("Criticality"),
}
CRITICALITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


# ---------------------------------------------------------------------------------------------
# What was asked


@dataclass
class Question:
    ci_ids: list[int] = field(default_factory=list)
    as_of: datetime | None = None
    as_of_text: str = ""
    group: str = "auto"
    errors: dict[str, list[str]] = field(default_factory=dict)

    def args(self, **more) -> dict:
        """The query string of this question (for url_for), with ``more``."""
        out = {"ci": self.ci_ids}
        if self.as_of_text:
            out["as_of"] = self.as_of_text
        if self.group != "auto":
            out["group"] = self.group
        out.update({k: v for k, v in more.items() if v not in (None, "")})
        return out


def _an_id(text: str) -> int | None:
    text = (text or "").strip()
    if is_number(text) and len(text) < 12:
        number = int(text)
        return number if 0 < number <= MAX_ID else None
    return None


def _question(args) -> Question:
    """The failure set (``ci``, several; ``ticket``: its CIs), ``as_of`` and the grouping, checked;
    what is wrong is in ``errors`` by field, and left out."""
    q = Question()
    bad = []
    for raw in [*args.getlist("ci"), *args.getlist("ci_id")]:
        for part in raw.split(","):
            if not part.strip():
                continue
            number = _an_id(part)
            if number is None:
                bad.append(part.strip()[:20])
            elif number not in q.ci_ids:
                q.ci_ids.append(number)
    if bad:
        q.errors["ci"] = [_("Not a CI id: %(ids)s.", ids=", ".join(bad[:5]))]
    ticket_text = (args.get("ticket") or "").strip()
    if ticket_text:
        ticket_id = _an_id(ticket_text)
        if ticket_id is None:
            raise NotFound(_("No ticket with id %(id)s.", id=ticket_text[:20]))
        for ci_id in get_ticket(ticket_id, g.user).ci_ids:
            if ci_id not in q.ci_ids:
                q.ci_ids.append(ci_id)
    drop = _an_id(args.get("drop") or "")
    if drop in q.ci_ids:
        q.ci_ids.remove(drop)
    if len(q.ci_ids) > MAX_FAILED:
        q.errors["ci"] = [_("At most %(most)d CIs fail together on this page.", most=MAX_FAILED)]
        q.ci_ids = q.ci_ids[:MAX_FAILED]
    text = (args.get("as_of") or "").strip()[:40]
    if text:
        q.as_of_text = text
        q.as_of = _parse_moment(text)
        if q.as_of is None:
            q.errors["as_of"] = [_("A date and time such as 2026-01-31T14:00.")]
            q.as_of_text = ""
        elif q.as_of > utcnow().replace(tzinfo=UTC):
            q.errors["as_of"] = [_("Pick a moment in the past: the future graph is not known.")]
            q.as_of, q.as_of_text = None, ""
    group = args.get("group") or "auto"
    q.group = group if group in GROUPINGS or group == "none" else "auto"
    return q


def _parse_moment(text: str) -> datetime | None:
    """A moment the user typed (datetime-local or a date, in the user's time zone) in UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.year < 1970:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=get_timezone())
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # the last minutes of the year 9999 west of Greenwich
        return None


# ---------------------------------------------------------------------------------------------
# The answer


@dataclass
class Answer:
    roots: list[dict]
    items: list[dict]  # the impacted CIs the viewer may see: {id, name, ci_class, criticality, depth, state, path}
    by_id: dict[int, dict]
    hidden: int
    down: int
    degraded: int
    services: list[int]
    tickets: dict[int, list[dict]]
    as_of: str | None

    @property
    def count(self) -> int:
        return self.down + self.degraded

    def name(self, ci_id: int | None) -> str:
        if ci_id is None:
            return _("a CI you may not see")
        found = self.by_id.get(ci_id)
        return found["name"] if found else str(ci_id)


def _answer(q: Question) -> Answer:
    """The relations service's answer for the question, as the viewer may see it."""
    result = impact(q.ci_ids, as_of=q.as_of, _field="ci")
    doc = impact_document(result, single_root=False, viewer=g.user)
    root_ids = [r for r in doc["roots"] if r is not None]
    roots = []
    for row in db.session.execute(
        select(ConfigurationItem.id, ConfigurationItem.name, ConfigurationItem.ci_class, ConfigurationItem.criticality)
        .where(id_in(ConfigurationItem.id, root_ids))
    ):  # fmt: skip
        roots.append({"id": row[0], "name": row[1], "ci_class": row[2], "criticality": row[3], "depth": 0,
                      "state": "failed", "path": [row[0]], "root": True})  # fmt: skip
    roots.sort(key=lambda r: root_ids.index(r["id"]))
    items, hidden = [], 0
    for entry in doc["impacted"]:
        ci = entry["ci"]
        if ci.get("id") is None:
            hidden += 1
            continue
        items.append({**ci, "depth": entry["depth"], "state": entry["state"], "path": entry["path"], "root": False})
    by_id = {item["id"]: item for item in roots + items}
    tickets: dict[int, list[dict]] = {}
    for ticket in doc.get("open_tickets", ()):
        for ci_id in ticket["ci_ids"]:
            tickets.setdefault(ci_id, []).append(ticket)
    return Answer(roots, items, by_id, hidden, doc["down"], doc["degraded"], list(doc["business_services"]),
                  tickets, doc.get("as_of"))  # fmt: skip


def _teams_of(ci_ids) -> dict[int, str]:
    ids = list(ci_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(ConfigurationItem.id, Team.name)
        .join(Team, Team.id == ConfigurationItem.owner_team_id)
        .where(id_in(ConfigurationItem.id, ids))
    )
    return {ci_id: name for ci_id, name in rows}


# ---------------------------------------------------------------------------------------------
# The map's elements


def _node_id(ci_id: int) -> str:
    return f"ci-{ci_id}"


def _ci_node(
    ans: Answer, item: dict, teams: dict, clusters: dict, down_ids: set, alerting: dict, parent: str | None = None
) -> dict:
    ci_id = item["id"]
    state = item["state"]
    classes = [state]
    lines = [item["name"]]
    if item["ci_class"] == "business_service":
        classes.append("service")
    health = None
    if ci_id in clusters:
        members = clusters[ci_id]["members"]
        up = sum(1 for m in members if m not in down_ids)
        health = {"members": len(members), "up": up, "min_up": clusters[ci_id]["min_up"]}
        classes.append("cluster")
        lines.append(_("%(up)d/%(total)d up · needs %(min)d", up=up, total=len(members), min=health["min_up"]))
    tickets = ans.tickets.get(ci_id, [])
    incidents = sum(1 for t in tickets if t["kind"] == "incident")
    if incidents:
        classes.append("incident")
        lines.append("⚠ " + _("%(num)d open incidents", num=incidents) if incidents > 1 else "⚠ " + _("open incident"))
    alerts = alerting.get(ci_id, 0)
    if alerts:
        classes.append("alerting")
        lines.append("◉ " + _("%(num)d firing alerts", num=alerts) if alerts > 1 else "◉ " + _("firing alert"))
    path = item["path"]
    data = {
        "id": _node_id(ci_id),
        "kind": "ci",
        "ci_id": ci_id,
        "label": "\n".join(lines),
        "name": item["name"],
        "ci_class": item["ci_class"],
        "class_label": class_label(item["ci_class"]),
        "criticality": item["criticality"],
        "state": state,
        "state_label": str(STATE_LABELS[state]),
        "depth": item["depth"],
        "team": teams.get(ci_id),
        "url": url_for("web.ci", ci_id=ci_id),
        "path": [_node_id(n) if n is not None else None for n in path],
        "why": [ans.name(n) for n in path],
        "service": item["ci_class"] == "business_service",
        "cluster": health,
        "tickets": [
            {
                "number": t["number"],
                "title": t["title"],
                "kind": t["kind"],
                "priority": t["priority"],
                "url": url_for("web.ticket", ticket_id=t["id"]),
            }
            for t in tickets[:TICKETS_PER_CI]
        ],  # fmt: skip
        "more_tickets": max(0, len(tickets) - TICKETS_PER_CI),
        "alerts": alerts,
    }
    if parent:
        data["parent"] = parent
    return {"data": data, "classes": " ".join(classes)}


def _grouping(q: Question, ans: Answer) -> str | None:
    if q.group in GROUPINGS:
        return q.group
    if ans.count > GROUP_OVER:
        return "class"
    return None


def _group_key(item: dict, by: str) -> str:
    return item["ci_class"] if by == "class" else str(item["depth"])


def _group_id(by: str, key: str) -> str:
    return f"g-{by}-{key}"


def _group_label(by: str, key: str) -> str:
    if by == "class":
        return class_label(key)
    return _("%(num)s hops away", num=key) if key != "1" else _("1 hop away")


def _apart(ans: Answer, by: str) -> set[int]:
    """The CIs drawn one by one on a grouped map: the failed ones and (when few) the business services."""
    apart = {r["id"] for r in ans.roots}
    if len(ans.services) <= SERVICES_APART:
        apart.update(ans.services)
    return apart


def _display(ci_id: int | None, ans: Answer, apart: set[int], shown: set[int], by: str) -> str | None:
    if ci_id is None:
        return None
    if ci_id in apart or ci_id in shown:
        return _node_id(ci_id)
    item = ans.by_id.get(ci_id)
    return _group_id(by, _group_key(item, by)) if item else None


def _down_ids(ans: Answer) -> set[int]:
    return {r["id"] for r in ans.roots} | {i["id"] for i in ans.items if i["state"] == "down"}


def map_data(q: Question, ans: Answer) -> dict:
    """The whole map: CIs one by one (with the relationships between them), or groups with counts."""
    by = _grouping(q, ans)
    down_ids = _down_ids(ans)
    nodes, edges = [], []
    if by is None:
        drawn = ans.roots + ans.items
        ids = [i["id"] for i in drawn]
        teams = _teams_of(ids)
        clusters = cluster_health([i["id"] for i in drawn if i["ci_class"] == "cluster"], as_of=q.as_of)
        alerting = firing_by_ci(ids) if q.as_of is None else {}
        nodes = [_ci_node(ans, item, teams, clusters, down_ids, alerting) for item in drawn]
        for link in impact_links(ids, as_of=q.as_of):
            edges.append({"data": {"id": f"r-{link['id']}", "source": _node_id(link["dependency"]),
                                   "target": _node_id(link["dependent"]), "label": link["label"]}})  # fmt: skip
    else:
        apart = _apart(ans, by)
        drawn = [ans.by_id[i] for i in ans.by_id if i in apart]
        teams = _teams_of([i["id"] for i in drawn])
        clusters = cluster_health([i["id"] for i in drawn if i["ci_class"] == "cluster"], as_of=q.as_of)
        alerting = firing_by_ci([i["id"] for i in ans.roots + ans.items]) if q.as_of is None else {}
        nodes = [_ci_node(ans, item, teams, clusters, down_ids, alerting) for item in drawn]
        groups: dict[str, dict] = {}
        for item in ans.items:
            if item["id"] in apart:
                continue
            key = _group_key(item, by)
            group = groups.setdefault(key, {"count": 0, "down": 0, "degraded": 0, "alerting": 0})
            group["count"] += 1
            group[item["state"]] += 1
            group["alerting"] += 1 if item["id"] in alerting else 0
        for key, group in sorted(groups.items()):
            label = _group_label(by, key)
            down, degraded = format_decimal(group["down"]), format_decimal(group["degraded"])
            counts = _("%(down)s down · %(degraded)s degraded", down=down, degraded=degraded)
            if group["alerting"]:
                counts += "\n◉ " + _("%(num)s alerting", num=format_decimal(group["alerting"]))
            nodes.append({
                "data": {"id": _group_id(by, key), "kind": "group", "by": by, "key": key, "name": label,
                         "label": f"{label} ×{format_decimal(group['count'])}\n{counts}", **group},
                "classes": "group " + ("down" if group["down"] else "degraded")
                           + (" alerting" if group["alerting"] else ""),
            })  # fmt: skip
        edges = _tree_edges(ans, ans.items, apart, set(), by)
    return {
        "roots": [r["id"] for r in ans.roots],
        "count": ans.count,
        "down": ans.down,
        "degraded": ans.degraded,
        "services": len(ans.services),
        "hidden": ans.hidden,
        "as_of": ans.as_of,
        "grouped": by is not None,
        "group_by": by,
        "threshold": GROUP_OVER,
        "elements": {"nodes": nodes, "edges": edges},
        "expand_url": url_for("web.impact_group", **q.args()) if by else None,
        "page_url": url_for("web.impact", **q.args()),
        "labels": _js_labels(),
    }


def _tree_edges(ans: Answer, items, apart: set[int], shown: set[int], by: str, skip: str | None = None) -> list:
    """Edges between what is drawn, from each CI's explaining path (the CI that took it down or
    degraded it), counted when several run between the same two drawn nodes."""
    counted: dict[tuple[str, str], int] = {}
    for item in items:
        if len(item["path"]) < 2:
            continue
        source = _display(item["path"][-2], ans, apart, shown, by)
        target = _display(item["id"], ans, apart, shown, by)
        if source is None or target is None or source == target or skip in (source, target):
            continue
        counted[(source, target)] = counted.get((source, target), 0) + 1
    edges = []
    for (s, t), n in counted.items():
        label = f"×{format_decimal(n)}" if n > 1 else ""
        edges.append({"data": {"id": f"e-{s}-{t}", "source": s, "target": t, "label": label, "weight": n}})
    return edges


def group_data(q: Question, ans: Answer, key: str) -> dict:
    """One group's CIs (the most hurt first, at most ``MEMBERS_SHOWN``) as children of the group's
    node, and the edges that tie them to the rest of the map."""
    by = _grouping(q, ans) or "class"
    apart = _apart(ans, by)
    members = [i for i in ans.items if i["id"] not in apart and _group_key(i, by) == key]
    if not members:
        raise NotFound(_("No such group on this map."))
    members.sort(key=lambda i: (i["state"] != "down", i["depth"], i["name"].lower(), i["id"]))
    shown_items = members[:MEMBERS_SHOWN]
    shown = {i["id"] for i in shown_items}
    group = _group_id(by, key)
    teams = _teams_of(shown)
    clusters = cluster_health([i["id"] for i in shown_items if i["ci_class"] == "cluster"], as_of=q.as_of)
    down_ids = _down_ids(ans)
    alerting = firing_by_ci(shown) if q.as_of is None else {}
    nodes = [_ci_node(ans, item, teams, clusters, down_ids, alerting, parent=group) for item in shown_items]
    # edges into the shown members, and out of them to what they explain
    explained = [i for i in ans.items if len(i["path"]) >= 2 and i["path"][-2] in shown]
    edges = _tree_edges(ans, shown_items + explained, apart, shown, by)
    edges = [e for e in edges if e["data"]["source"] != group and e["data"]["target"] != group]
    for edge in edges:
        edge["data"]["id"] = f"x{group}-{edge['data']['id']}"
    more = len(members) - len(shown_items)
    return {"group": group, "count": len(members), "more": more, "elements": {"nodes": nodes, "edges": edges}}


def _js_labels() -> dict:
    """The words impact.js writes into the details panel (translated here, not in the script)."""
    return {
        "class": _("Class"),
        "team": _("Owner team"),
        "state": _("State"),
        "criticality": _("Criticality"),
        "why": _("Why"),
        "tickets": _("Open tickets"),
        "none": _("none"),
        "no_team": _("no team"),
        "open": _("Open its page"),
        "what_if": _("Add to the failure set (what-if)"),
        "spof": _("Show its single points of failure"),
        "path_here": _("Shortest path from the failed CI"),
        "members": _("Members up"),
        "expand": _("Show its CIs"),
        "expanding": _("Loading…"),
        "more": _("%(num)s more are in the table.", num="{n}"),
        "failed_root": _("This CI is in the failure set."),
        "group_help": _("A group of CIs; select it to show them on the map."),
        "more_tickets": _("and {n} more"),
        "hops": _("Hops"),
        "nothing": _("Nothing else fails with it: nothing depends on it."),
    }


# ---------------------------------------------------------------------------------------------
# The table


def _sorted_items(items: list[dict], sort: str) -> list[dict]:
    key = sort.lstrip("-")
    if key not in SORTS:
        key = "depth"
    keys = {
        "depth": lambda i: (i["depth"], i["name"].lower()),
        "name": lambda i: (i["name"].lower(), i["id"]),
        "class": lambda i: (class_label(i["ci_class"]).lower(), i["name"].lower()),
        "state": lambda i: (i["state"] != "down", i["depth"], i["name"].lower()),
        "criticality": lambda i: (CRITICALITY_RANK.get(i["criticality"], 9), i["name"].lower()),
    }
    return sorted(items, key=keys[key], reverse=sort.startswith("-"))


def _resolve_ci(text: str, field_name: str) -> int:
    """A CI the user named: its id, or an exact name or asset tag, or the one CI the text finds."""
    text = text.strip()[:TEXT_MAX]
    number = _an_id(text)
    if number is not None:
        return get_ci(number, g.user).id
    found = list(db.session.scalars(search_cis({"q": text, "sort": ["name"]}, g.user).limit(20)))
    exact = [c for c in found if c.name.lower() == text.lower() or (c.asset_tag or "").lower() == text.lower()]
    if len(exact) == 1 or len(found) == 1:
        return (exact or found)[0].id
    message = (
        _("No CI matches “%(text)s”.", text=text)
        if not found
        else _("Several CIs match “%(text)s”: pick one from the list, or give its id.", text=text)
    )
    raise Invalid(message, errors={field_name: [message]})


# ---------------------------------------------------------------------------------------------
# Pages


@bp.get("/impact", endpoint="impact")
@page(*STAFF)
def impact_page():
    """The impact map of a failure set, its table, the what-if picker, time travel, single points of
    failure and the shortest path between two CIs."""
    args = request.args
    q = _question(args)
    typed = "" if args.get("ci_id") else (args.get("q") or "").strip()
    if typed or args.get("ci_id") or args.get("drop") or args.get("ticket"):
        # a CI added by the picker (or one dropped): on to the failure set's own address
        try:
            if typed:
                added = _resolve_ci(typed, "q")
                if added not in q.ci_ids:
                    q.ci_ids.append(added)
        except DomainError as error:
            db.session.rollback()
            keep_errors(error)
            return _render(q, error.status, typed=typed)
        if not q.errors:
            return redirect(url_for("web.impact", **q.args()))
    return _render(q, 422 if q.errors else 200)


def _render(q: Question, status: int, typed: str = ""):
    args = request.args
    context: dict = {"q": q, "typed": typed, "answer": None, "map": None, "spof": None, "path": None}
    errors = {**q.errors, **field_errors()}
    if q.ci_ids:
        try:
            ans = _answer(q)
        except DomainError as error:
            db.session.rollback()
            keep_errors(error)
            errors.update(field_errors())
            ans = None
            status = error.status if status < 400 else status
        if ans is not None:
            context["answer"] = ans
            extra, status = _extras(q, ans, args, errors, status)
            context.update(extra)
            data = map_data(q, ans)
            data["spof"] = [_node_id(i) for i in (context["spof"] or {}).get("ids", [])]
            data["highlight"] = [_node_id(i) for i in (context["path"] or {}).get("ids", [])]
            context["map"] = data
            context.update(_table(ans, args))
    context.update(
        errors=errors,
        groupings=GROUPINGS,
        sort_labels=SORT_LABELS,
        state_labels=STATE_LABELS,
        class_label=class_label,
        breadcrumbs=[(_("Impact map"), None)],
    )
    return render_template("impact/page.html", **context), status


def _extras(q: Question, ans: Answer, args, errors: dict, status: int):
    """Single points of failure of a business service, and a shortest path, when asked."""
    out: dict = {"spof": None, "path": None}
    spof_text = (args.get("spof") or "").strip()
    if spof_text:
        try:
            service = _resolve_ci(spof_text, "spof")
            answer = single_points_of_failure(service, g.user)
            found = [i for i in answer["items"] if i.get("id") is not None]
            out["spof"] = {"service": get_ci(service, g.user), "items": found, "ids": [i["id"] for i in found]}
        except DomainError as error:
            db.session.rollback()
            errors.setdefault("spof", [error.detail])
            status = max(status, error.status)
    start, end = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    if start or end:
        try:
            if not start or not end:
                raise Invalid(_("Name both ends of the path."), errors={"to" if start else "from": [_("Required.")]})
            a, b = _resolve_ci(start, "from"), _resolve_ci(end, "to")
            found = shortest_path(a, b, directed=False, viewer=g.user)
            ids = [n for n in found["path"] if n is not None]
            rows = db.session.execute(
                select(ConfigurationItem.id, ConfigurationItem.name).where(id_in(ConfigurationItem.id, ids))
            )
            names = {ci_id: name for ci_id, name in rows}
            out["path"] = {"ids": ids, "steps": [(n, names.get(n, _("a CI you may not see"))) for n in found["path"]]}
        except DomainError as error:
            db.session.rollback()
            message = error.detail
            for key in ("from", "to"):
                if error.errors and key in error.errors:
                    errors.setdefault(key, list(error.errors[key]))
            if not error.errors:
                errors.setdefault("to", [message])
            status = max(status, error.status)
    out["path_form"] = {"from": start[:TEXT_MAX], "to": end[:TEXT_MAX]}
    out["spof_form"] = spof_text[:TEXT_MAX]
    return out, status


def _table(ans: Answer, args) -> dict:
    sort = (args.get("sort") or "depth").strip()
    if sort.lstrip("-") not in SORTS:
        sort = "depth"
    rows = _sorted_items(ans.items, sort)
    pages = max(1, -(-len(rows) // TABLE_ROWS))
    number = _an_id(args.get("page") or "") or 1
    number = min(number, pages)
    shown = rows[(number - 1) * TABLE_ROWS : number * TABLE_ROWS]
    return {
        "rows": shown,
        "teams": _teams_of([r["id"] for r in shown]),
        "sort": sort,
        "page_number": number,
        "pages": pages,
    }


@bp.get("/impact/map.json")
@page(*STAFF)
def impact_map():
    """The map's Cytoscape elements for ``ci`` (several) or ``ticket``, ``as_of`` and ``group``."""
    q = _question(request.args)
    _refuse(q)
    return _json(map_data(q, _answer(q)))


@bp.get("/impact/group.json")
@page(*STAFF)
def impact_group():
    """The CIs of one group of a grouped map (``key``: a class, or a number of hops)."""
    q = _question(request.args)
    _refuse(q)
    key = (request.args.get("key") or "").strip()[:60]
    if not key:
        raise Invalid(_("Which group?"), errors={"key": [_("Required.")]})
    return _json(group_data(q, _answer(q), key))


def _refuse(q: Question) -> None:
    if q.errors:
        raise Invalid(_("Some parameters are invalid."), errors=q.errors)
    if not q.ci_ids:
        raise Invalid(_("Name the CIs that fail."), errors={"ci": [_("Required.")]})


def _json(body: dict) -> Response:
    from flask import current_app

    response = current_app.response_class(current_app.json.dumps(body), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


EXPORTS = {
    "graphml": ("application/graphml+xml", export.graphml),
    "dot": ("text/vnd.graphviz", export.dot),
    "json": ("application/json", None),
}


@bp.get("/impact/export.<fmt>")
@page(*STAFF)
def impact_export(fmt: str):
    """The answer as a file: CSV (every impacted CI, formula-safe), GraphML, DOT or Cytoscape JSON
    (the failed CIs, every impacted CI and the relationships between them)."""
    if fmt not in EXPORTS and fmt != "csv":
        raise NotFound(_("No such export."))
    q = _question(request.args)
    _refuse(q)
    ans = _answer(q)
    stamp = (ans.as_of or utcnow().isoformat())[:10]
    name = f"impact-{'-'.join(map(str, q.ci_ids[:5]))}-{stamp}"
    if fmt == "csv":
        return _csv(ans, name)
    ids = [i["id"] for i in ans.roots + ans.items]
    hood = {
        "root": ans.roots[0]["id"] if ans.roots else q.ci_ids[0],
        "depth": max([i["depth"] for i in ans.items], default=0),
        "nodes": [
            {
                "id": i["id"],
                "name": i["name"],
                "ci_class": i["ci_class"],
                "criticality": i["criticality"],
                "depth": i["depth"],
            }
            for i in ans.roots + ans.items
        ],  # fmt: skip
        "edges": impact_links(ids, as_of=q.as_of),
        "truncated": False,
        "hidden_nodes": ans.hidden,
        "graph_version": 0,
    }
    mimetype, writer = EXPORTS[fmt]
    if writer is None:
        from flask import current_app

        body = current_app.json.dumps(export.cytoscape(hood))
    else:
        body = writer(hood)
    extension = {"graphml": "graphml", "dot": "gv", "json": "cyjs.json"}[fmt]
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}.{extension}"'})  # fmt: skip


def _csv(ans: Answer, name: str) -> Response:
    teams = _teams_of([i["id"] for i in ans.roots + ans.items])
    out = io.StringIO()
    writer = SafeCSVWriter(out)
    writer.writerow(["id", "name", "class", "state", "hops", "criticality", "owner_team", "open_tickets", "why"])
    for item in ans.roots + _sorted_items(ans.items, "depth"):
        tickets = " ".join(t["number"] for t in ans.tickets.get(item["id"], []))
        why = " > ".join(ans.name(n) for n in item["path"])
        writer.writerow([item["id"], item["name"], item["ci_class"], item["state"], item["depth"],
                         item["criticality"], teams.get(item["id"], ""), tickets, why])  # fmt: skip
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip
