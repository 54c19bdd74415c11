"""subscription notices users accepted

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

One row per (openid, subscription template): accept or reject, from WeChat's
subscribe_msg_popup_event / subscribe_msg_change_event, and the one-time acceptances not used
yet. The delivery chooser sends a subscription notice (bizsend) only where a row allows it.
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=True),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription')),
    sa.UniqueConstraint('openid', 'template_id', name=op.f('uq_subscription_openid_template_id'))
    )
    with op.batch_alter_table('subscription') as batch:
        batch.create_index(batch.f('ix_subscription_openid'), ['openid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('subscription') as batch:
        batch.drop_index(batch.f('ix_subscription_openid'))
    op.drop_table('subscription')
