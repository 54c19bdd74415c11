"""dialog state on the follower row

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

The dialog state moves from Redis (with a table used only while Redis was down) onto the
follower row every message already locks: a Redis outage can no longer lose a dialog at
either of its edges, and reading it costs no round trip.
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('follower') as batch:
        batch.add_column(sa.Column('dialog', sa.Text(), nullable=True))
        batch.add_column(sa.Column('dialog_until', sa.DateTime(), nullable=True))
    op.drop_table('dialog_state')


def downgrade() -> None:
    op.create_table('dialog_state',
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('openid', name=op.f('pk_dialog_state'))
    )
    with op.batch_alter_table('follower') as batch:
        batch.drop_column('dialog_until')
        batch.drop_column('dialog')
