"""the worker holding each delivery, and the workers' heartbeats

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

A delivery taken from the queue or claimed by a worker names that worker; every worker beats in
delivery_worker every couple of seconds. The sweeper takes over the rows of a worker whose
heartbeat stopped within seconds, instead of waiting for a lease set when the row was pushed.
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.add_column(sa.Column('worker', sa.String(length=64), nullable=True))
    op.create_table('delivery_worker',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('beat_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_worker'))
    )


def downgrade() -> None:
    op.drop_table('delivery_worker')
    with op.batch_alter_table('delivery') as batch:
        batch.drop_column('worker')
