"""conversation memory: rating question, threads and drafts on the follower; how each
inbound message was understood

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

FOLLOWER_COLUMNS = [
    ('rating_ticket_id', sa.Integer()), ('rating_until', sa.DateTime()),
    ('thread_kind', sa.String(length=8)), ('thread_ref', sa.Integer()),
    ('thread_staff_id', sa.Integer()), ('thread_until', sa.DateTime()),
    ('draft', sa.Text()), ('draft_until', sa.DateTime()),
]


def upgrade() -> None:
    with op.batch_alter_table('follower') as batch:
        for name, type_ in FOLLOWER_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.add_column(sa.Column('rating_by_number', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table('inbound_message') as batch:
        batch.add_column(sa.Column('understood', sa.String(length=48), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbound_message') as batch:
        batch.drop_column('understood')
    with op.batch_alter_table('follower') as batch:
        batch.drop_column('rating_by_number')
        for name, _ in reversed(FOLLOWER_COLUMNS):
            batch.drop_column(name)
