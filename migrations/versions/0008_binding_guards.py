"""binding guards: one own binding per cadre, wrong tries per cadre, binding notices

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('uq_binding_self_cadre', 'binding', ['cadre_id'], unique=True,
                    sqlite_where=sa.text("relation = 'self'"),
                    postgresql_where=sa.text("relation = 'self'"))
    op.create_table('bind_guard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('paused_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_bind_guard_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bind_guard')),
    sa.UniqueConstraint('cadre_id', name=op.f('uq_bind_guard_cadre_id'))
    )
    op.create_table('binding_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('binding_id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('bound_openid', sa.String(length=64), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('undone_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadre.id'], name=op.f('fk_binding_notice_cadre_id_cadre')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_binding_notice'))
    )
    op.create_index(op.f('ix_binding_notice_openid'), 'binding_notice', ['openid'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_binding_notice_openid'), table_name='binding_notice')
    op.drop_table('binding_notice')
    op.drop_table('bind_guard')
    op.drop_index('uq_binding_self_cadre', table_name='binding')
