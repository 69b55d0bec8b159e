"""relations: installed_on carries no impact (recorded, shown, never propagated)

A relationship type's ``impact`` may now be ``none`` besides the two directions. ``installed_on`` (a
software product on each device it is installed on) becomes one: one broken laptop no longer takes
"Microsoft Office" down; an application instance that really runs on a host is ``runs_on``.
Operators' own types keep what they say.

The one open relationship per (source, target, type) stays the unique partial index
``uq_relationship_open`` of 0002; bulk writes now insert ON CONFLICT DO NOTHING on it.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _set_impact(old: str, new: str) -> None:
    op.get_bind().execute(
        sa.text("UPDATE relationship_type SET impact = :new WHERE name = 'installed_on' AND impact = :old"),
        {"old": old, "new": new},
    )


def upgrade():
    _set_impact("source_depends_on_target", "none")


def downgrade():
    _set_impact("none", "source_depends_on_target")
