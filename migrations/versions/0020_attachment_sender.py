"""who sent a photo or recording: told when the recording could not be kept

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01

A voice recording WeChat no longer gives out (40007), or that three days of retries could not
fetch, is lost; the user who sent it is now asked to say it again (bot/media.py). A ticket's
recording may come from the reporter or from family adding a note, so the attachment keeps
the sender's openid. Earlier rows stay empty: the ticket's reporter or the request's user
stands in for them.
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket_attachment') as batch:
        batch.add_column(sa.Column('sender_openid', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ticket_attachment') as batch:
        batch.drop_column('sender_openid')
