"""Who sees what: the kernel's half of the visibility rule.

Requesters see only what is theirs (API.md: their own tickets, the CIs assigned to them); every
other role sees everything, and so does the system itself (jobs, CLI, mail processing: no viewer).
Each domain writes its own rule for its objects next to the object endpoints that use it
(``cmdb.services.can_see_ci`` / ``visible_ci_ids``, ``tickets.services.can_see_ticket`` /
``visible_ticket_ids``), and every answer that embeds an object goes through that same rule:
an embedded object the viewer may not see is shown as :func:`hidden` (``{id: null, visible:
false}``), a list of ids keeps only the visible ones (with a count of the others where the answer
has one), never any field of the hidden object.
"""

from __future__ import annotations

from sqlalchemy import select

from cairn.auth.roles import REQUESTER
from cairn.db import MAX_ID, db, id_in


def restricted(viewer) -> bool:
    """Whether ``viewer`` sees only what is theirs; None (the system) sees everything."""
    return viewer is not None and viewer.role == REQUESTER


def hidden() -> dict:
    """What an answer shows in place of an embedded object the viewer may not see."""
    return {"id": None, "visible": False}


def visible_ids(model, condition, ids) -> set[int]:
    """Those of ``ids`` (of rows of ``model``) that meet ``condition``, a domain's visibility rule
    as SQL (None: the viewer sees them all and gets the ids back as given); one query."""
    wanted = {i for i in ids if i is not None}
    if condition is None or not wanted:
        return wanted
    in_range = [i for i in wanted if 0 < i <= MAX_ID]
    return set(db.session.scalars(select(model.id).where(id_in(model.id, in_range), condition)))
