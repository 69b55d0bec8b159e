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

from cairn.auth.roles import REQUESTER


def restricted(viewer) -> bool:
    """Whether ``viewer`` sees only what is theirs; None (the system) sees everything."""
    return viewer is not None and viewer.role == REQUESTER


def hidden() -> dict:
    """What an answer shows in place of an embedded object the viewer may not see."""
    return {"id": None, "visible": False}
