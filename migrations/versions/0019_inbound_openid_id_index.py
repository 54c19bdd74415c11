"""a user's messages newest first from one index: (openid, id) replaces (openid)

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30

The growth run (scripts/bench_load.py growth, 1,000,000 messages) showed "the user's last
texts" as a bitmap scan on openid plus a sort of all the user's rows; with (openid, id) it is
an index scan backwards that stops after the few it needs. The composite index serves every
lookup the single-column one did.
"""
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_message') as batch:
        batch.create_index('ix_inbound_message_openid_id', ['openid', 'id'], unique=False)
        batch.drop_index('ix_inbound_message_openid')


def downgrade() -> None:
    with op.batch_alter_table('inbound_message') as batch:
        batch.create_index('ix_inbound_message_openid', ['openid'], unique=False)
        batch.drop_index('ix_inbound_message_openid_id')
