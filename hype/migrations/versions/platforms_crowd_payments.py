"""crowd platforms: listings, synced submissions, bonus payments; per-session completion codes

Sessions that finished before this revision all carry their study's shared code; to make codes unique
those get "-<assignment id>" appended (they were never synced by hype, so nothing matched them yet).

Revision ID: platforms
Revises: 0001
Create Date: 2026-11-29 18:41:10.867237
"""
from alembic import op
import sqlalchemy as sa


revision = 'platforms'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('platform_studies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('sandbox', sa.Boolean(), nullable=False),
    sa.Column('places', sa.Integer(), nullable=False),
    sa.Column('reward_cents', sa.Integer(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_platform_studies_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_studies')),
    sa.UniqueConstraint('platform', 'external_id', name=op.f('uq_platform_studies_platform_external_id'))
    )
    with op.batch_alter_table('platform_studies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_platform_studies_study_id'), ['study_id'], unique=False)

    op.create_table('bonus_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('worker_id', sa.String(length=200), nullable=False),
    sa.Column('submission_id', sa.String(length=200), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('request_token', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('batch_id', sa.String(length=200), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_bonus_payments_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_bonus_payments_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonus_payments')),
    sa.UniqueConstraint('platform', 'assignment_id', name=op.f('uq_bonus_payments_platform_assignment_id')),
    sa.UniqueConstraint('request_token', name=op.f('uq_bonus_payments_request_token'))
    )
    with op.batch_alter_table('bonus_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bonus_payments_study_id'), ['study_id'], unique=False)

    op.create_table('platform_submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('worker_id', sa.String(length=200), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('platform_status', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=200), nullable=True),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_platform_submissions_assignment_id_assignments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_platform_submissions_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_submissions')),
    sa.UniqueConstraint('platform', 'external_id', name=op.f('uq_platform_submissions_platform_external_id'))
    )
    with op.batch_alter_table('platform_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_platform_submissions_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_platform_submissions_study_id'), ['study_id'], unique=False)

    op.execute("UPDATE assignments SET completion_code = completion_code || '-' || CAST(id AS VARCHAR(20)) "
               "WHERE completion_code IS NOT NULL")
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_assignments_completion_code'), ['completion_code'])



def downgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_assignments_completion_code'), type_='unique')

    with op.batch_alter_table('platform_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_platform_submissions_study_id'))
        batch_op.drop_index(batch_op.f('ix_platform_submissions_assignment_id'))

    op.drop_table('platform_submissions')
    with op.batch_alter_table('bonus_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bonus_payments_study_id'))

    op.drop_table('bonus_payments')
    with op.batch_alter_table('platform_studies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_platform_studies_study_id'))

    op.drop_table('platform_studies')
