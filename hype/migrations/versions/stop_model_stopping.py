"""model_stopping: each model's last look by the study's stopping rule (issue 15 part 2)

Revision ID: stop
Revises: jobs
"""
from alembic import op
import sqlalchemy as sa


revision = 'stop'
down_revision = 'jobs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_stopping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('n_evaluators', sa.Integer(), nullable=False),
    sa.Column('estimate', sa.Float(), nullable=True),
    sa.Column('halfwidth', sa.Float(), nullable=True),
    sa.Column('confidence_level', sa.Float(), nullable=True),
    sa.Column('stopped', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=True),
    sa.Column('stopped_n', sa.Integer(), nullable=True),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('forecast', sa.JSON(), nullable=True),
    sa.Column('forecast_n', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_model_stopping_model_id_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_model_stopping_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_stopping')),
    sa.UniqueConstraint('model_id', name=op.f('uq_model_stopping_model_id'))
    )
    with op.batch_alter_table('model_stopping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_stopping_study_id'), ['study_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('model_stopping', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_stopping_study_id'))
    op.drop_table('model_stopping')
