"""The front door and the technician's dashboard."""

from __future__ import annotations

from datetime import timedelta

from flask import g, redirect, render_template
from sqlalchemy import or_

from cairn.auth import roles
from cairn.auth.sessions import page
from cairn.config import setting
from cairn.db import db, utcnow
from cmdb.models import ConfigurationItem
from cmdb.services import visible_cis
from tickets.services import queue_filters, search_tickets
from web.blueprint import bp
from web.shell import STAFF, home_for

DASHBOARD_ROWS = 10


@bp.get("/")
@page(*roles.ALL_ROLES)
def home():
    return redirect(home_for(g.user))


@bp.get("/desk")
@page(*STAFF)
def desk():
    """My open tickets, my teams' unassigned ones, those about to breach, open major incidents and
    the CIs I look after that changed lately."""
    user = g.user
    now = utcnow()
    within = timedelta(hours=setting("CAIRN_DESK_BREACH_HOURS", 4))

    def tickets(filters: dict, sort=("priority", "resolution_due")):
        stmt = search_tickets({**filters, "sort": list(sort)}, user).limit(DASHBOARD_ROWS)
        return list(db.session.scalars(stmt))

    team_ids = [team.id for team in user.teams]
    mine = or_(ConfigurationItem.assigned_to_id == user.id, ConfigurationItem.owner_team_id.in_(team_ids or [0]))
    my_cis = db.session.scalars(
        visible_cis(user).where(mine).order_by(ConfigurationItem.updated_at.desc()).limit(DASHBOARD_ROWS)
    )
    return render_template(
        "desk/dashboard.html",
        mine=tickets(queue_filters("mine", user)),
        team=tickets(queue_filters("team", user)) if team_ids else None,
        near_breach=tickets({"open": True, "breached": False, "due_before": now + within}, ("resolution_due",)),
        major=tickets({"open": True, "kind": ["incident"], "priority": [1, 2]}, ("priority", "-created_at")),
        my_cis=list(my_cis),
        breach_hours=int(within.total_seconds() // 3600),
        breadcrumbs=[],
    )
