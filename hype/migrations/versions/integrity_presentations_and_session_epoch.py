"""trial presentations (image deliveries) and researcher session epochs

Revision ID: integrity
Revises: recruit
"""
from alembic import op
import sqlalchemy as sa


revision = 'integrity'
down_revision = 'recruit'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trials') as batch:
        batch.add_column(sa.Column('presentations', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('researchers') as batch:
        batch.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('researchers') as batch:
        batch.drop_column('session_epoch')
    with op.batch_alter_table('trials') as batch:
        batch.drop_column('presentations')
