"""Calendars, SLA/OLA policies and escalation rules: every write to them goes through here, and
each write that moves a clock queues a recomputation of the open tickets it touches
(tickets.slas.recompute, a durable job)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from cairn.auth.models import Team, User
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, Invalid
from cmdb.models import ConfigurationItem
from tickets import workflow
from tickets.models import Ticket, TicketCategory
from tickets.slas import clocks, ical
from tickets.slas import recompute as recompute_jobs
from tickets.slas.models import MATCH_FIELDS, BusinessCalendar, EscalationRule, SLAPolicy, SLARecompute

RECOMPUTE_BATCH = 500


# ---------------------------------------------------------------------------------------------
# Calendars


def calendars() -> Select:
    return select(BusinessCalendar).order_by(BusinessCalendar.name, BusinessCalendar.id)


def save_calendar(data: dict[str, Any], calendar: BusinessCalendar | None = None) -> BusinessCalendar:
    """Create a calendar, or change one; an edit of its hours, zone or closures queues a
    recomputation of the open tickets whose policies use it (``calendar.recompute``: the row to
    follow, or None)."""
    name = data.get("name")
    if name is not None and (calendar is None or name != calendar.name):
        _unique(BusinessCalendar, name)
    created = calendar is None
    if calendar is None:
        calendar = BusinessCalendar(hours={}, closures=[])
        db.session.add(calendar)
    moved = False
    for key in ("name", "time_zone", "hours", "closures"):
        if key in data:
            moved = moved or (key != "name" and getattr(calendar, key) != data[key])
            setattr(calendar, key, data[key])
    db.session.flush()
    calendar.recompute = None
    if moved and not created:
        calendar.recompute = recompute_jobs.request(
            f"calendar {calendar.id} ({calendar.name}) changed",
            policy_ids=[p.id for p in _policies_of_calendar(calendar.id)],
        )
    return calendar


def delete_calendar(calendar: BusinessCalendar) -> None:
    """Delete a calendar no policy uses (409 naming them otherwise)."""
    used = [p.name for p in _policies_of_calendar(calendar.id)]
    if used:
        raise Conflict(f"The calendar is used by the SLA policies {', '.join(used[:10])}.")
    db.session.delete(calendar)
    db.session.flush()


def import_ical(calendar: BusinessCalendar, data: bytes) -> tuple[BusinessCalendar, int, int]:
    """Add the closures of an iCalendar file (422 naming what is wrong with it; nothing is added
    then). Closures already on the calendar (same name, start and end) are not added twice.
    Returns (calendar, closures added, recurring events skipped)."""
    try:
        found, skipped = ical.closures(data, calendar.time_zone)
        for closure in found:
            _readable(closure)
    except ical.ICalError as error:
        raise Invalid(f"Not a usable iCalendar file: {error}.", errors={"file": [str(error)]}) from error
    existing = {(c["name"], c["start"], c.get("end")) for c in calendar.closures}
    added = [c for c in found if (c["name"], c["start"], c["end"]) not in existing]
    if len(calendar.closures) + len(added) > 2000:
        raise Invalid("A calendar holds at most 2000 closures.", errors={"file": ["too many closures"]})
    save_calendar({"closures": [*calendar.closures, *added]}, calendar)
    return calendar, len(added), skipped


def _readable(closure: dict) -> None:
    try:
        clocks.parse_closure(closure)
    except (ValueError, OverflowError) as error:
        raise ical.ICalError(f"the event {closure['name']!r} has a date out of range") from error


def _policies_of_calendar(calendar_id: int) -> list[SLAPolicy]:
    return list(db.session.scalars(select(SLAPolicy).where(SLAPolicy.calendar_id == calendar_id)))


def _unique(model, name: str) -> None:
    if db.session.scalar(select(model.id).where(model.name == name)) is not None:
        raise Conflict(f"A {model.__tablename__.replace('_', ' ')} named {name!r} exists already.")


# ---------------------------------------------------------------------------------------------
# Policies and rules


def policies() -> Select:
    return select(SLAPolicy).order_by(SLAPolicy.type, SLAPolicy.order, SLAPolicy.id)


def escalation_rules() -> Select:
    return select(EscalationRule).order_by(EscalationRule.order, EscalationRule.id)


def _exists(model, object_id: int | None) -> bool:
    return object_id is None or (0 < object_id <= MAX_ID and db.session.get(model, object_id) is not None)


def _check_match(match: dict, errors: dict) -> None:
    for key, model in (
        ("category_id", TicketCategory),
        ("team_id", Team),
        ("service_ci_id", ConfigurationItem),
    ):
        if not _exists(model, match.get(key)):
            errors.setdefault("match", {})[key] = [f"No {model.__tablename__.replace('_', ' ')} with this id."]


def _apply_match(rule, match: dict) -> None:
    for key in MATCH_FIELDS:
        setattr(rule, f"match_{key}", match.get(key))


def save_policy(data: dict[str, Any], policy: SLAPolicy | None = None) -> SLAPolicy:
    """Create or change an SLA/OLA policy (422 for a calendar, team, category or CI that does not
    exist; an OLA names its team); then re-match and recompute every open ticket."""
    errors: dict = {}
    if "calendar_id" in data and not _exists(BusinessCalendar, data["calendar_id"]):
        errors["calendar_id"] = ["No business calendar with this id."]
    if "match" in data:
        _check_match(data["match"], errors)
    policy_type = data.get("type", policy.type if policy else "sla")
    team_id = data["match"].get("team_id") if "match" in data else (policy.match_team_id if policy else None)
    if policy_type == "ola" and team_id is None:
        errors.setdefault("match", {})["team_id"] = ["An OLA policy names the assigned team it applies to."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    name = data.get("name")
    if name is not None and (policy is None or name != policy.name):
        _unique(SLAPolicy, name)
    created = policy is None
    if policy is None:
        policy = SLAPolicy()
        db.session.add(policy)
    moved = created
    for key, value in data.items():
        if key == "match":
            moved = moved or policy.match != {k: value.get(k) for k in MATCH_FIELDS}
            _apply_match(policy, value)
        else:
            moved = moved or (key != "name" and getattr(policy, key) != value)
            setattr(policy, key, value)
    db.session.flush()
    db.session.expire(policy, ["calendar"])
    policy.recompute = None
    if moved:
        verb = "created" if created else "changed"
        policy.recompute = recompute_jobs.request(f"policy {policy.id} ({policy.name}) {verb}", rematch=True)
    return policy


def delete_policy(policy: SLAPolicy) -> SLARecompute | None:
    """Delete a policy and queue matching its open tickets again (another policy, or the wall
    clock for those whose SLA it was); returns the recomputation's row."""
    orphans = list(
        db.session.scalars(
            select(Ticket.id).where(Ticket.sla_policy_id == policy.id, Ticket.state.not_in(workflow.DONE_STATES))
        )
    )
    row = recompute_jobs.request(f"policy {policy.id} ({policy.name}) deleted", rematch=True, orphan_ids=orphans)
    db.session.delete(policy)
    db.session.flush()
    return row


def save_escalation_rule(data: dict[str, Any], rule: EscalationRule | None = None) -> EscalationRule:
    """Create or change an escalation rule (422 for ids that do not exist, for an idle rule
    without ``idle_business_hours`` or another rule with it)."""
    errors: dict = {}
    if "match" in data:
        _check_match(data["match"], errors)
    trigger = data.get("on", rule.on if rule else None)
    hours = data.get("idle_business_hours", rule.idle_business_hours if rule else None)
    if trigger == "idle" and hours is None:
        errors["idle_business_hours"] = ["An idle rule says after how many business hours it fires."]
    if trigger != "idle" and hours is not None:
        errors["idle_business_hours"] = ["Only an idle rule has idle_business_hours."]
    for index, action in enumerate(data.get("actions", [])):
        if not _exists(Team, action.get("reassign_team_id")):
            errors.setdefault("actions", {})[index] = {"reassign_team_id": ["No team with this id."]}
        if not _exists(User, action.get("add_watcher_id")):
            errors.setdefault("actions", {})[index] = {"add_watcher_id": ["No user with this id."]}
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    name = data.get("name")
    if name is not None and (rule is None or name != rule.name):
        _unique(EscalationRule, name)
    if rule is None:
        rule = EscalationRule(actions=[])
        db.session.add(rule)
    for key, value in data.items():
        if key == "match":
            _apply_match(rule, value)
        else:
            setattr(rule, key, value)
    db.session.flush()
    return rule


def delete_escalation_rule(rule: EscalationRule) -> None:
    db.session.delete(rule)
    db.session.flush()


# ---------------------------------------------------------------------------------------------
# Recomputation


def recompute(
    *,
    policy_ids: list[int] | None = None,
    ticket_ids: list[int] | None = None,
    rematch: bool = False,
    without_policy_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Recompute the clocks of open tickets now, in this unit of work (those of ``policy_ids``, or
    ``ticket_ids``, or all of them); with ``rematch`` pick their policies again first (leaving out
    ``without_policy_id``). Returns how many changed. Edits queue the durable job instead
    (tickets.slas.recompute); this is the same pass for scripts and benchmarks."""
    if (policy_ids is not None and not policy_ids) or (ticket_ids is not None and not ticket_ids):
        return 0
    now = now or utcnow()
    changed, last_id = 0, 0
    while True:
        count, batch_changed, last_id = recompute_jobs.recompute_batch(
            after_id=last_id,
            policy_ids=policy_ids,
            ticket_ids=ticket_ids,
            rematch=rematch,
            without_policy_id=without_policy_id,
            now=now,
            limit=RECOMPUTE_BATCH,
        )
        if not count:
            return changed
        changed += batch_changed
