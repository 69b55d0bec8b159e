"""relations: relationship types, relationships, the graph version counter

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:31:35.524401

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The built-in relationship types (relations/types.py holds the same; migrations import no app code).
BUILTIN_TYPES = [
    {
        "name": "depends_on",
        "label": "Depends on",
        "reverse_label": "Is needed by",
        "impact": "source_depends_on_target",
        "source_classes": [],
        "target_classes": []
    },
    {
        "name": "runs_on",
        "label": "Runs on",
        "reverse_label": "Runs",
        "impact": "source_depends_on_target",
        "source_classes": [
            "virtual_machine",
            "container",
            "database",
            "application",
            "software",
            "cloud_service"
        ],
        "target_classes": [
            "server",
            "virtual_machine",
            "container",
            "cluster",
            "cloud_account",
            "cloud_service"
        ]
    },
    {
        "name": "hosted_on",
        "label": "Hosted on",
        "reverse_label": "Hosts",
        "impact": "source_depends_on_target",
        "source_classes": [
            "application",
            "database",
            "cloud_service",
            "container",
            "virtual_machine",
            "software",
            "business_service"
        ],
        "target_classes": [
            "server",
            "virtual_machine",
            "container",
            "cluster",
            "storage",
            "cloud_account",
            "cloud_service",
            "load_balancer"
        ]
    },
    {
        "name": "installed_on",
        "label": "Installed on",
        "reverse_label": "Has installed",
        "impact": "source_depends_on_target",
        "source_classes": [
            "software"
        ],
        "target_classes": [
            "server",
            "virtual_machine",
            "container",
            "laptop",
            "desktop",
            "mobile_phone",
            "tablet"
        ]
    },
    {
        "name": "uses",
        "label": "Uses",
        "reverse_label": "Is used by",
        "impact": "source_depends_on_target",
        "source_classes": [],
        "target_classes": []
    },
    {
        "name": "connected_to",
        "label": "Connected to",
        "reverse_label": "Connects",
        "impact": "source_depends_on_target",
        "source_classes": [
            "server",
            "laptop",
            "desktop",
            "printer",
            "storage",
            "network_switch",
            "router",
            "firewall",
            "access_point",
            "load_balancer",
            "mobile_phone",
            "tablet",
            "rack",
            "pdu",
            "ups"
        ],
        "target_classes": [
            "network_switch",
            "router",
            "firewall",
            "access_point",
            "load_balancer"
        ]
    },
    {
        "name": "powered_by",
        "label": "Powered by",
        "reverse_label": "Powers",
        "impact": "source_depends_on_target",
        "source_classes": [
            "server",
            "laptop",
            "desktop",
            "printer",
            "storage",
            "network_switch",
            "router",
            "firewall",
            "access_point",
            "load_balancer",
            "mobile_phone",
            "tablet",
            "rack",
            "pdu",
            "ups"
        ],
        "target_classes": [
            "pdu",
            "ups"
        ]
    },
    {
        "name": "contains",
        "label": "Contains",
        "reverse_label": "Is contained in",
        "impact": "target_depends_on_source",
        "source_classes": [
            "rack",
            "cloud_account",
            "server",
            "cluster"
        ],
        "target_classes": [
            "server",
            "storage",
            "network_switch",
            "router",
            "firewall",
            "load_balancer",
            "pdu",
            "ups",
            "cloud_service",
            "virtual_machine",
            "container"
        ]
    },
    {
        "name": "member_of",
        "label": "Member of",
        "reverse_label": "Has member",
        "impact": "target_depends_on_source",
        "source_classes": [
            "server",
            "virtual_machine",
            "container",
            "database",
            "application",
            "storage",
            "network_switch",
            "router",
            "firewall",
            "load_balancer",
            "cluster"
        ],
        "target_classes": [
            "cluster"
        ]
    }
]


def upgrade():
    op.create_table('graph_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('stamp', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_graph_state'))
    )
    relationship_type = op.create_table('relationship_type',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('reverse_label', sa.String(length=100), nullable=False),
    sa.Column('impact', sa.String(length=30), nullable=False),
    sa.Column('source_classes', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('target_classes', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relationship_type')),
    sa.UniqueConstraint('name', name=op.f('uq_relationship_type_name'))
    )
    op.create_table('relationship',
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('valid_from', sa.DateTime(), nullable=False),
    sa.Column('valid_to', sa.DateTime(), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['ci.id'], name=op.f('fk_relationship_source_id_ci'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['target_id'], ['ci.id'], name=op.f('fk_relationship_target_id_ci'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['type'], ['relationship_type.name'], name=op.f('fk_relationship_type_relationship_type'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relationship'))
    )
    with op.batch_alter_table('relationship', schema=None) as batch_op:
        batch_op.create_index('ix_relationship_source', ['source_id', 'target_id', 'type', 'valid_to'], unique=False)
        batch_op.create_index('ix_relationship_target', ['target_id', 'source_id', 'type', 'valid_to'], unique=False)
        batch_op.create_index('ix_relationship_valid_from', ['valid_from'], unique=False)
        batch_op.create_index('uq_relationship_open', ['source_id', 'target_id', 'type'], unique=True, sqlite_where=sa.text('valid_to IS NULL'), postgresql_where=sa.text('valid_to IS NULL'))

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    op.bulk_insert(relationship_type, [
        {**spec, 'description': '', 'created_at': now, 'updated_at': now} for spec in BUILTIN_TYPES
    ])
    graph_state = sa.table('graph_state', sa.column('id'), sa.column('version'), sa.column('stamp'), sa.column('updated_at'))
    op.bulk_insert(graph_state, [{'id': 1, 'version': 0, 'stamp': 0, 'updated_at': now}])


def downgrade():
    with op.batch_alter_table('relationship', schema=None) as batch_op:
        batch_op.drop_index('uq_relationship_open', sqlite_where=sa.text('valid_to IS NULL'), postgresql_where=sa.text('valid_to IS NULL'))
        batch_op.drop_index('ix_relationship_valid_from')
        batch_op.drop_index('ix_relationship_target')
        batch_op.drop_index('ix_relationship_source')

    op.drop_table('relationship')
    op.drop_table('relationship_type')
    op.drop_table('graph_state')
