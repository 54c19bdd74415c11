"""photos and voice of tickets kept: the downloaded copy's state and file

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

WeChat deletes a message's media three days after it arrives. Each photo or voice attachment
now records its own copy: pending (to be downloaded through media/get), saved (a file under
YINLING_MEDIA_DIR with an unguessable name), failed or expired (with why), and the attempts.
Photos and voice recorded before are pending: the media sweep downloads them if WeChat still
has them and marks the ones older than three days expired. Locations have no media status.
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket_attachment') as batch:
        batch.add_column(sa.Column('status', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('next_try_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('file_name', sa.String(length=160), nullable=True))
        batch.add_column(sa.Column('content_type', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('size', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('saved_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('error', sa.String(length=32), nullable=True))
        batch.create_index(batch.f('ix_ticket_attachment_status'), ['status'], unique=False)
    attachment = sa.table('ticket_attachment', sa.column('kind', sa.String),
                          sa.column('media_id', sa.String), sa.column('status', sa.String),
                          sa.column('error', sa.String))
    media = attachment.c.kind.in_(('image', 'voice'))
    op.execute(attachment.update().where(media, attachment.c.media_id.is_not(None))
               .values(status='pending'))
    op.execute(attachment.update().where(media, attachment.c.media_id.is_(None))
               .values(status='failed', error='no_media_id'))


def downgrade() -> None:
    with op.batch_alter_table('ticket_attachment') as batch:
        batch.drop_index(batch.f('ix_ticket_attachment_status'))
        batch.drop_column('error')
        batch.drop_column('saved_at')
        batch.drop_column('size')
        batch.drop_column('content_type')
        batch.drop_column('file_name')
        batch.drop_column('next_try_at')
        batch.drop_column('attempts')
        batch.drop_column('status')
