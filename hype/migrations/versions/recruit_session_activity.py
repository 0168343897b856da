"""assignments.last_active_at: when a session last moved, so idle ones can be abandoned

Revision ID: recruit
Revises: platforms
"""
from alembic import op
import sqlalchemy as sa


revision = 'recruit'
down_revision = 'platforms'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_active_at', sa.DateTime(timezone=True), nullable=True))
    # Existing sessions were last active at their latest answer, or else when they started.
    op.execute(
        "UPDATE assignments SET last_active_at = COALESCE("
        "(SELECT MAX(judgments.received_at) FROM judgments WHERE judgments.assignment_id = assignments.id), "
        "completed_at, created_at)"
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.alter_column('last_active_at', existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_column('last_active_at')
