"""Routing: which rule a ticket meets, what its actions change, and who in the team gets it.

Rules are tried by ``position`` (then id); the FIRST active rule whose conditions all hold wins and
no other rule runs (there is no ``stop`` flag: a rule that should let later ones run is two rules).
A rule runs on every new ticket, whatever door it came in by (API, bulk, mail intake, portal,
monitoring events: they all go through ``tickets.services.create_ticket``), and when a ticket's
category changes (``tickets.services.update_ticket``).

Values the client chose are kept: on a new ticket the team, assignee, category and priority
(impact or urgency) it sent; on a re-categorisation the fields sent in the same write. A rule with
``override`` replaces them anyway. An action that cannot apply (a category of another kind, an
assignee outside the team or unable to work tickets) is skipped and the skip is recorded.

When the ticket then has a team and no assignee, the team's assignment settings pick one of its
members on shift (``round_robin`` or ``least_loaded``; ``manual`` leaves it to the team). The
hand-out UPDATEs the team's ``team_assignment`` row first: on PostgreSQL that row lock makes a
concurrent create of the same team wait until this one commits and then read the member it chose
(READ COMMITTED re-reads the updated row), so two creates never hand out the same member in a row;
on SQLite writers are serial anyway and the UPDATE takes the write lock before anything is read.

Each application is one change-log row on the ticket: "routed by rule X", with what was set,
kept and skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from cairn.audit.mixin import record
from cairn.auth.models import Team, User
from cairn.auth.roles import ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION
from cairn.db import db, utcnow
from cmdb.classes import REGISTRY
from cmdb.models import ConfigurationItem, Location
from tickets import categories, workflow
from tickets.models import Ticket, TicketCategory
from tickets.routing.models import CONDITIONS, RoutingRule, TeamAssignment
from tickets.slas import clocks
from tickets.slas.models import BusinessCalendar

# tickets.services.ASSIGNABLE_ROLES (that module imports this one)
ASSIGNABLE_ROLES = (ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION)
# The fields a rule's actions write, and what in a client's body makes each one "explicit".
EXPLICIT_KEYS = {"team_id": ("team_id",), "assignee_id": ("assignee_id",), "category_id": ("category_id",),
                 "priority": ("impact", "urgency")}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Facts


@dataclass
class Draft:
    """What rules look at: a ticket about to be created, or an existing one."""

    kind: str
    title: str = ""
    category_id: int | None = None
    ci_ids: list[int] = field(default_factory=list)
    requester_id: int | None = None
    mail_route: str | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    impact: int = 3
    urgency: int = 3

    @classmethod
    def of(cls, data: dict[str, Any], ci_ids: list[int] | None = None) -> Draft:
        return cls(
            kind=data["kind"],
            title=data.get("title") or "",
            category_id=data.get("category_id"),
            ci_ids=list(ci_ids if ci_ids is not None else data.get("ci_ids") or []),
            requester_id=data.get("requester_id"),
            mail_route=(data.get("mail_route") or "").strip().lower() or None,
            team_id=data.get("team_id"),
            assignee_id=data.get("assignee_id"),
            impact=data.get("impact") or 3,
            urgency=data.get("urgency") or 3,
        )

    @classmethod
    def of_ticket(cls, ticket: Ticket, mail_route: str | None = None) -> Draft:
        return cls(
            kind=ticket.kind,
            title=ticket.title or "",
            category_id=ticket.category_id,
            ci_ids=list(ticket.ci_ids) if ticket.id is not None else [],
            requester_id=ticket.requester_id,
            mail_route=(mail_route or "").strip().lower() or None,
            team_id=ticket.team_id,
            assignee_id=ticket.assignee_id,
            impact=ticket.impact,
            urgency=ticket.urgency,
        )

    @property
    def priority(self) -> int:
        return workflow.priority_of(self.impact, self.urgency)


class Facts:
    """The draft's values each condition compares with, read from the database once, lazily."""

    def __init__(self, draft: Draft):
        self.draft = draft
        self._cache: dict[str, Any] = {}

    def get(self, condition: str):
        if condition not in self._cache:
            self._cache[condition] = getattr(self, f"_{condition}")()
        return self._cache[condition]

    def _kind(self):
        return self.draft.kind

    def _category_id(self) -> list[int]:
        """The ticket's category and, for a subcategory, its parent."""
        category = db.session.get(TicketCategory, self.draft.category_id) if self.draft.category_id else None
        return [category.id, *([category.parent_id] if category.parent_id else [])] if category else []

    def _cis(self) -> list[ConfigurationItem]:
        if "cis" not in self._cache:
            ids = self.draft.ci_ids[:1000]
            self._cache["cis"] = (
                list(db.session.scalars(select(ConfigurationItem).where(ConfigurationItem.id.in_(ids)))) if ids else []
            )
        return self._cache["cis"]

    def _ci_class(self) -> list[str]:
        """The linked CIs' classes and every class they inherit from."""
        out: list[str] = []
        for ci in self._cis():
            name = ci.ci_class
            while name and name not in out:
                out.append(name)
                parent = REGISTRY.get(name)
                name = parent.parent if parent is not None else None
        return out

    def _ci_team_id(self) -> list[int]:
        return sorted({ci.owner_team_id for ci in self._cis() if ci.owner_team_id is not None})

    def _requester(self) -> User | None:
        return db.session.get(User, self.draft.requester_id) if self.draft.requester_id else None

    def _requester_team_id(self) -> list[int]:
        requester = self._requester()
        return sorted(team.id for team in requester.teams) if requester is not None else []

    def _requester_location_id(self) -> list[int]:
        """Where the requester is: the locations of the CIs assigned to it (a user has no location of
        its own), with every location that contains them."""
        if self.draft.requester_id is None:
            return []
        found = set(
            db.session.scalars(
                select(ConfigurationItem.location_id)
                .where(
                    ConfigurationItem.assigned_to_id == self.draft.requester_id,
                    ConfigurationItem.location_id.is_not(None),
                )
                .limit(100)
            )
        )
        out: list[int] = []
        for location_id in found:
            while location_id is not None and location_id not in out:
                out.append(location_id)
                location = db.session.get(Location, location_id)
                location_id = location.parent_id if location is not None else None
        return sorted(out)

    def _mail_route(self):
        return self.draft.mail_route

    def _title_words(self):
        return self.draft.title


def words_match(words: list[str], title: str) -> bool:
    """Whether the title holds one of ``words`` (each a word or phrase) as whole words, any case."""
    return any(re.search(rf"(?<!\w){re.escape(w.strip())}(?!\w)", title, re.IGNORECASE) for w in words if w.strip())


def check(rule: RoutingRule, facts: Facts) -> list[dict]:
    """The conditions of ``rule`` the facts do not meet (empty: it matches), each with the value
    wanted and the value found."""
    failed = []
    for condition in CONDITIONS:
        wanted = getattr(rule, f"match_{condition}")
        if wanted is None or wanted == []:
            continue
        actual = facts.get(condition)
        if condition in ("kind",):
            ok = actual == wanted
        elif condition == "mail_route":
            ok = actual is not None and actual == wanted.lower()
        elif condition == "title_words":
            ok = words_match(wanted, actual)
        else:
            ok = wanted in actual
        if not ok:
            failed.append({"condition": condition, "wanted": wanted, "found": actual})
    return failed


def rules() -> list[RoutingRule]:
    return list(
        db.session.scalars(
            select(RoutingRule).where(RoutingRule.active.is_(True)).order_by(RoutingRule.position, RoutingRule.id)
        )
    )


def first_match(draft: Draft, candidates: list[RoutingRule] | None = None) -> tuple[RoutingRule | None, list]:
    """(the winning rule or None, [(rule, failed conditions)] for every rule tried up to it)."""
    facts = Facts(draft)
    tried = []
    for rule in rules() if candidates is None else candidates:
        failed = check(rule, facts)
        tried.append((rule, failed))
        if not failed:
            return rule, tried
    return None, tried


# ---------------------------------------------------------------------------------------------
# Actions


def impact_urgency_for(priority: int, impact: int, urgency: int) -> tuple[int, int]:
    """Impact and urgency that derive ``priority`` (the priority stays derived, API.md): the
    impact is kept when some urgency reaches it, else the urgency, else both change."""
    for u in (1, 2, 3):
        if workflow.priority_of(impact, u) == priority:
            return impact, u
    for i in (1, 2, 3):
        if workflow.priority_of(i, urgency) == priority:
            return i, urgency
    return {1: (1, 1), 2: (1, 2), 3: (2, 2), 4: (2, 3), 5: (3, 3)}[priority]


def works_tickets(user: User | None) -> bool:
    return user is not None and user.active and user.role in ASSIGNABLE_ROLES


def member_of(team_id: int | None, user_id: int | None) -> bool:
    if team_id is None or user_id is None:
        return True
    team = db.session.get(Team, team_id)
    return team is not None and any(m.id == user_id for m in team.members)


def apply(rule: RoutingRule, draft: Draft, explicit: set[str]) -> list[dict]:
    """Change ``draft`` by the rule's actions; returns one entry per action:
    ``{action, value, outcome: set|kept|skipped, reason}``."""
    out = []

    def note(action, value, outcome, reason=None):
        out.append({"action": action, "value": value, "outcome": outcome, **({"reason": reason} if reason else {})})

    def blocked(action) -> bool:
        return action in explicit and not rule.override

    if rule.set_category_id is not None:
        category = db.session.get(TicketCategory, rule.set_category_id)
        if blocked("category_id"):
            note("category_id", rule.set_category_id, "kept", "the client chose the category")
        elif category is None or category.kind != draft.kind or not category.active:
            note("category_id", rule.set_category_id, "skipped", f"not an active {draft.kind} category")
        else:
            draft.category_id = category.id
            note("category_id", category.id, "set")
    if rule.set_priority is not None:
        if blocked("priority"):
            note("priority", rule.set_priority, "kept", "the client chose impact or urgency")
        else:
            draft.impact, draft.urgency = impact_urgency_for(rule.set_priority, draft.impact, draft.urgency)
            note("priority", rule.set_priority, "set")
    if rule.set_team_id is not None:
        if blocked("team_id"):
            note("team_id", rule.set_team_id, "kept", "the client chose the team")
        elif draft.assignee_id is not None and not member_of(rule.set_team_id, draft.assignee_id):
            if blocked("assignee_id"):
                note("team_id", rule.set_team_id, "skipped", "the chosen assignee is not in that team")
            else:
                draft.team_id, draft.assignee_id = rule.set_team_id, None
                note("team_id", rule.set_team_id, "set")
        else:
            draft.team_id = rule.set_team_id
            note("team_id", rule.set_team_id, "set")
    if rule.set_assignee_id is not None:
        user = db.session.get(User, rule.set_assignee_id)
        if blocked("assignee_id"):
            note("assignee_id", rule.set_assignee_id, "kept", "the client chose the assignee")
        elif not works_tickets(user):
            note("assignee_id", rule.set_assignee_id, "skipped", "the user can't work tickets")
        elif not member_of(draft.team_id, user.id):
            note("assignee_id", rule.set_assignee_id, "skipped", "the user is not in the ticket's team")
        else:
            draft.assignee_id = user.id
            note("assignee_id", user.id, "set")
    return out


# ---------------------------------------------------------------------------------------------
# Assignment within a team


def settings_of(team_id: int | None) -> TeamAssignment | None:
    if team_id is None:
        return None
    return db.session.scalar(select(TeamAssignment).where(TeamAssignment.team_id == team_id))


def is_open(calendar: BusinessCalendar, now: datetime) -> bool:
    pure = clocks.to_calendar(calendar)
    day = pure.local_date(now)
    return any(start <= now < end for start, end in pure.open_intervals(day))


def on_shift(settings: TeamAssignment, now: datetime | None = None) -> list[User]:
    """The members who may get a ticket now, by id: active, able to work tickets, not away, and
    (a team with a calendar) inside its open hours; nobody outside them."""
    now = now or utcnow()
    if settings.calendar_id is not None:
        calendar = db.session.get(BusinessCalendar, settings.calendar_id)
        if calendar is not None and not is_open(calendar, now):
            return []
    team = db.session.get(Team, settings.team_id)
    away = set(settings.away_user_ids or [])
    members = [m for m in (team.members if team else []) if works_tickets(m) and m.id not in away]
    return sorted(members, key=lambda m: m.id)


def open_load(user_ids: list[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    counts = dict(
        db.session.execute(
            select(Ticket.assignee_id, func.count())
            .where(Ticket.assignee_id.in_(user_ids), Ticket.state.not_in(workflow.DONE_STATES))
            .group_by(Ticket.assignee_id)
        )
        .tuples()
        .all()
    )
    return {user_id: counts.get(user_id, 0) for user_id in user_ids}


def _after(members: list[User], last_id: int | None) -> list[User]:
    """The members in turn order, starting after ``last_id`` (wrapping round)."""
    later = [m for m in members if last_id is None or m.id > last_id]
    return later + [m for m in members if m not in later]


def pick(team_id: int | None, *, peek: bool = False, now: datetime | None = None) -> tuple[User | None, dict]:
    """The member the team's mode hands the next ticket to, and how it was chosen. ``peek``: only
    say who (a dry run); otherwise take the team's turn (row lock, see the module docstring)."""
    settings = settings_of(team_id)
    if settings is None or settings.mode == "manual":
        return None, {"team_id": team_id, "mode": "manual"}
    last_id = settings.last_assignee_id
    if not peek:
        # Lock first, read after: the UPDATE waits for a concurrent hand-out of the team to commit
        # and returns the member it chose.
        last_id = db.session.execute(
            update(TeamAssignment)
            .where(TeamAssignment.id == settings.id)
            .values(turns=TeamAssignment.turns + 1)
            .returning(TeamAssignment.last_assignee_id)
            .execution_options(synchronize_session=False)
        ).scalar_one()
    members = on_shift(settings, now)
    how: dict[str, Any] = {"team_id": team_id, "mode": settings.mode, "on_shift": [m.id for m in members]}
    if not members:
        return None, how
    ordered = _after(members, last_id)
    if settings.mode == "least_loaded":
        load = open_load([m.id for m in ordered])
        how["open_tickets"] = {str(k): v for k, v in load.items()}
        chosen = min(ordered, key=lambda m: load[m.id])  # ties: the next in turn
    else:
        chosen = ordered[0]
    if not peek:
        db.session.execute(
            update(TeamAssignment)
            .where(TeamAssignment.id == settings.id)
            .values(last_assignee_id=chosen.id)
            .execution_options(synchronize_session=False)
        )
        db.session.expire(settings, ["last_assignee_id", "turns"])
    return chosen, how


# ---------------------------------------------------------------------------------------------
# The hooks tickets.services calls


@dataclass
class Outcome:
    rule: RoutingRule | None
    actions: list[dict]
    assignment: dict | None
    before: dict
    tried: list = field(default_factory=list)

    def changes(self) -> dict:
        entry: dict[str, Any] = {"actions": self.actions}
        if self.rule is not None:
            entry |= {"rule_id": self.rule.id, "rule": self.rule.name}
        if self.assignment is not None:
            entry["assignment"] = self.assignment
        return {"routing": [None, entry]}

    def summary(self, number: str) -> str:
        if self.rule is not None:
            return f"{number} routed by rule {self.rule.name}"
        return f"{number} assigned by the team's {self.assignment['mode'].replace('_', '-')} rota"


def explicit_fields(data: dict) -> set[str]:
    return {a for a, sent in EXPLICIT_KEYS.items() if any(data.get(k) is not None for k in sent)}


def run(draft: Draft, explicit: set[str], *, category_default: bool = False, peek: bool = False) -> Outcome:
    """Route ``draft`` (changed in place): the first matching rule's actions, then (a new ticket)
    the category's default team, then the team's rota; ``peek`` leaves the rota where it is."""
    before = {"team_id": draft.team_id, "assignee_id": draft.assignee_id, "category_id": draft.category_id,
              "priority": draft.priority}  # fmt: skip
    rule, tried = first_match(draft)
    actions = apply(rule, draft, explicit) if rule is not None else []
    if draft.team_id is None and category_default and draft.category_id is not None:
        # No rule chose a team: the category's default team (the simplest routing rule).
        draft.team_id = categories.default_team_id(db.session.get(TicketCategory, draft.category_id), draft.assignee_id)
    assignment = None
    if draft.team_id is not None and draft.assignee_id is None:
        chosen, how = pick(draft.team_id, peek=peek)
        if how["mode"] != "manual":
            assignment = how | {"assignee_id": chosen.id if chosen else None}
            draft.assignee_id = chosen.id if chosen else None
    return Outcome(rule, actions, assignment, before, tried)


def route_new(data: dict[str, Any], ci_ids: list[int]) -> Outcome | None:
    """Route a ticket about to be created: ``data`` (the checked body, changed in place; its
    internal ``mail_route`` key, set by the mail intake, is taken out). When no rule chose a team,
    the category's default team. Returns what to record once the ticket has an id (None: nothing
    happened)."""
    draft = Draft.of(data, ci_ids)
    data.pop("mail_route", None)
    outcome = run(draft, explicit_fields(data), category_default=True)
    if draft.category_id != data.get("category_id"):
        data["category_id"] = draft.category_id
    for key in ("team_id", "assignee_id"):
        if getattr(draft, key) is not None:
            data[key] = getattr(draft, key)
    if (draft.impact, draft.urgency) != (data.get("impact") or 3, data.get("urgency") or 3):
        data["impact"], data["urgency"] = draft.impact, draft.urgency
    return outcome if (outcome.rule is not None or outcome.assignment is not None) else None


def record_outcome(ticket: Ticket, outcome: Outcome | None) -> None:
    """The change-log row of a routing: "INC0000042 routed by rule Laptops" and what it did."""
    if outcome is not None:
        record(db.session, ticket, "update", outcome.changes(), outcome.summary(ticket.number)[:300])


def reroute(ticket: Ticket, data: dict[str, Any]) -> None:
    """Route a ticket again after its category changed (``data``: the write that changed it, whose
    fields are the client's explicit choices); applies the result to the ticket and records it."""
    draft = Draft.of_ticket(ticket)
    explicit = explicit_fields(data)
    outcome = run(draft, explicit)
    if outcome.rule is None and outcome.assignment is None:
        return
    if draft.team_id != ticket.team_id:
        ticket.ola_started_at = None
    for key in ("category_id", "team_id", "assignee_id", "impact", "urgency"):
        if getattr(draft, key) != getattr(ticket, key):
            setattr(ticket, key, getattr(draft, key))
    if ticket.id is not None:
        db.session.flush()
        record_outcome(ticket, outcome)
