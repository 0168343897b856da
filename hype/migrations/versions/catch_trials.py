"""catch trials: Trial.is_catch (degraded fakes and clean reals, never scored)

Revision ID: catch
Revises: stop
"""
from alembic import op
import sqlalchemy as sa


revision = 'catch'
down_revision = 'stop'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trials') as batch:
        batch.add_column(sa.Column('is_catch', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('trials') as batch:
        batch.drop_column('is_catch')
