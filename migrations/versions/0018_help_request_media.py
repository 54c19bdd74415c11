"""recordings of 人工 requests kept like a ticket's: an attachment belongs to a ticket or a request

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30

A voice message WeChat could not turn into words opens (or joins) a 人工 request; its
recording is now kept the way a ticket's is (bot/media.py). The attachment row gets a second
parent, help_request_id, and ticket_id may be empty: a CHECK insists on exactly one of them.
Existing rows all belong to a ticket and stay as they are.

Downgrade: recordings of 人工 requests have no place in the older schema; their rows are
deleted (their files stay under YINLING_MEDIA_DIR).
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

ONE_PARENT = ("(ticket_id IS NULL AND help_request_id IS NOT NULL) OR "
              "(ticket_id IS NOT NULL AND help_request_id IS NULL)")


def upgrade() -> None:
    with op.batch_alter_table('ticket_attachment') as batch:
        batch.add_column(sa.Column('help_request_id', sa.Integer(), nullable=True))
        batch.alter_column('ticket_id', existing_type=sa.Integer(), nullable=True)
        batch.create_index(batch.f('ix_ticket_attachment_help_request_id'),
                           ['help_request_id'], unique=False)
        batch.create_foreign_key(
            batch.f('fk_ticket_attachment_help_request_id_help_request'), 'help_request',
            ['help_request_id'], ['id'])
        batch.create_check_constraint(batch.f('ck_ticket_attachment_one_parent'), ONE_PARENT)


def downgrade() -> None:
    attachment = sa.table('ticket_attachment', sa.column('help_request_id', sa.Integer))
    op.execute(attachment.delete().where(attachment.c.help_request_id.is_not(None)))
    with op.batch_alter_table('ticket_attachment') as batch:
        batch.drop_constraint(batch.f('ck_ticket_attachment_one_parent'), type_='check')
        batch.drop_constraint(batch.f('fk_ticket_attachment_help_request_id_help_request'),
                              type_='foreignkey')
        batch.drop_index(batch.f('ix_ticket_attachment_help_request_id'))
        batch.alter_column('ticket_id', existing_type=sa.Integer(), nullable=False)
        batch.drop_column('help_request_id')
