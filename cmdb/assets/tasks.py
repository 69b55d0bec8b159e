"""Scheduled asset reminders: contract notice deadlines, warranty and licence expiry.

Each reminder is an ``AssetReminder`` row, written once per (kind, object, due date); its change-log
entry is the event (it shows in the history of the CIs concerned). E-mail to the owning team goes out
only where mail is configured; it is not yet, so ``notified_at`` stays empty.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, select

from cairn.config import setting
from cairn.db import db, utcnow
from cmdb.assets.models import AssetReminder, Contract, Licence
from cmdb.assets.services import RETIRED_STATUSES, notice_deadline
from cmdb.models import ConfigurationItem

log = logging.getLogger("cairn.assets")

DEFAULT_LEAD_DAYS = 30


def _lead_days() -> int:
    return setting("CAIRN_ASSET_REMINDER_DAYS", DEFAULT_LEAD_DAYS)


def _already(kind: str, object_type: str, object_id: int, due) -> bool:
    return (
        db.session.scalar(
            select(AssetReminder.id).where(
                AssetReminder.kind == kind,
                AssetReminder.object_type == object_type,
                AssetReminder.object_id == object_id,
                AssetReminder.due_date == due,
            )
        )
        is not None
    )


def _remind(kind, object_type, object_id, due, message, ci_id=None, team_id=None) -> bool:
    if _already(kind, object_type, object_id, due):
        return False
    db.session.add(
        AssetReminder(
            kind=kind,
            object_type=object_type,
            object_id=object_id,
            due_date=due,
            ci_id=ci_id,
            team_id=team_id,
            message=message[:500],
        )
    )
    return True


def contract_reminders(contract_id: int | None = None) -> int:
    """Remind of contracts whose notice deadline is within the lead time (and not yet past the end)."""
    today = utcnow().date()
    horizon = today + timedelta(days=_lead_days())
    stmt = select(Contract).where(Contract.end_date.is_not(None), Contract.end_date >= today)
    if contract_id is not None:
        stmt = stmt.where(Contract.id == contract_id)
    raised = 0
    for contract in db.session.scalars(stmt):
        deadline = notice_deadline(contract)
        if deadline is None or deadline > horizon:
            continue
        verb = "renews automatically" if contract.auto_renew else "ends"
        label = contract.name or contract.reference or f"#{contract.id}"
        message = f"contract {label} {verb} on {contract.end_date.isoformat()}: give notice by {deadline.isoformat()}"
        if _remind("contract_renewal", "contract", contract.id, deadline, message, team_id=contract.owner_team_id):
            raised += 1
    db.session.flush()
    log.info("contract reminders raised: %d", raised)
    return raised


def warranty_reminders(ci_id: int | None = None) -> int:
    """Remind of CIs in the estate whose warranty expires within the lead time."""
    today = utcnow().date()
    horizon = today + timedelta(days=_lead_days())
    ci = ConfigurationItem
    stmt = select(ci.id, ci.name, ci.warranty_expires, ci.owner_team_id).where(
        and_(ci.warranty_expires >= today, ci.warranty_expires <= horizon), ci.status.not_in(RETIRED_STATUSES)
    )
    if ci_id is not None:
        stmt = stmt.where(ci.id == ci_id)
    raised = 0
    for row in db.session.execute(stmt).all():
        message = f"warranty of {row.name} expires on {row.warranty_expires.isoformat()}"
        if _remind(
            "warranty_expiry", "ci", row.id, row.warranty_expires, message, ci_id=row.id, team_id=row.owner_team_id
        ):
            raised += 1
    db.session.flush()
    log.info("warranty reminders raised: %d", raised)
    return raised


def licence_reminders(licence_id: int | None = None) -> int:
    """Remind of licences whose term ends within the lead time."""
    today = utcnow().date()
    horizon = today + timedelta(days=_lead_days())
    stmt = select(Licence).where(Licence.end_date >= today, Licence.end_date <= horizon)
    if licence_id is not None:
        stmt = stmt.where(Licence.id == licence_id)
    raised = 0
    for licence in db.session.scalars(stmt):
        message = f"{licence.model} licence {licence.reference or licence.id} ends on {licence.end_date.isoformat()}"
        if _remind("licence_expiry", "licence", licence.id, licence.end_date, message, ci_id=licence.software_id):
            raised += 1
    db.session.flush()
    return raised


def asset_reminders() -> dict[str, int]:
    """The periodic job: every kind of reminder, each raised once."""
    return {
        "contract_renewal": contract_reminders(),
        "warranty_expiry": warranty_reminders(),
        "licence_expiry": licence_reminders(),
    }
