"""qrule: every study made before `time.adaptive_rule` existed keeps the QUEST+ rule it ran with

The default exposure rule of adaptive HYPE-time changed from Watson's joint posterior ("parameters") to
the threshold's marginal posterior ("threshold"). A study's settings are its own copy of the protocol
(docs/protocol.md), and a setting missing from that copy would read as today's default, so a study
that was collecting when hype was upgraded would switch rules between one worker and the next. This
writes the rule those studies ran with into their stored settings. Drafts are left alone: nobody has
seen them yet, so they take the new default like any new study.

Revision ID: qrule
Revises: stop2
"""
from alembic import op
import sqlalchemy as sa


revision = 'qrule'
down_revision = 'stop2'
branch_labels = None
depends_on = None

_studies = sa.table('studies', sa.column('id', sa.Integer), sa.column('status', sa.String),
                    sa.column('settings', sa.JSON))


def _rewrite(change) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(_studies.c.id, _studies.c.status, _studies.c.settings)).all():
        settings = row.settings
        if not isinstance(settings, dict):
            continue
        new = change(row.status, settings)
        if new is not None:
            conn.execute(_studies.update().where(_studies.c.id == row.id).values(settings=new))


def upgrade() -> None:
    def keep_old_rule(status: str, settings: dict):
        time = dict(settings.get('time') or {})
        if status == 'draft' or 'adaptive_rule' in time:
            return None
        time['adaptive_rule'] = 'parameters'
        return {**settings, 'time': time}

    _rewrite(keep_old_rule)


def downgrade() -> None:
    def drop_rule(_status: str, settings: dict):
        time = dict(settings.get('time') or {})
        if 'adaptive_rule' not in time:
            return None
        del time['adaptive_rule']
        return {**settings, 'time': time}

    _rewrite(drop_rule)
