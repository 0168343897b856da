"""evaluator_scores: each completed session's score, cached for the stopping rule's look (issue 15 part 2)

Revision ID: stop2
Revises: catch
"""
from alembic import op
import sqlalchemy as sa


revision = 'stop2'
down_revision = 'catch'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evaluator_scores',
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('basis', sa.String(length=64), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_evaluator_scores_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_evaluator_scores_model_id_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_evaluator_scores_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('assignment_id', name=op.f('pk_evaluator_scores'))
    )
    with op.batch_alter_table('evaluator_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluator_scores_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluator_scores_study_id'), ['study_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('evaluator_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluator_scores_study_id'))
        batch_op.drop_index(batch_op.f('ix_evaluator_scores_model_id'))
    op.drop_table('evaluator_scores')
