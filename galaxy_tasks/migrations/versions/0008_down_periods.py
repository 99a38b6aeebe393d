"""Down periods of games and the evidence of their recovery (SPEC §5 "RTM: convergence").

A game is down from the commit of any of its down events until an inspect and
the probe success threshold, all started after that commit, agree its current
container is healthy.  ``down_seq`` is the ``event_seq`` of the down event that
began the period (0: not down); the ``recovery_*`` columns hold what the
observations of that period said so far.  Kept on the snapshot row because
every event of the game already locks it.  Rows that are down when this
migration runs start a down period at their latest event.

``rtmanager.runtime_records.status`` gains the value ``exited`` (a text column:
no schema change): the container stopped for good by itself.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("down_seq", sa.BigInteger, "0", "event_seq of the down event that began the game's down period; 0: not down."),
    ("recovery_container", sa.Text, "''", "The container the recovery evidence is about."),
    ("recovery_inspected", sa.Boolean, "false", "An inspect in this down period showed it running and not unhealthy."),
    ("recovery_probes", sa.Integer, "0", "Consecutive successful probes of it in this down period."),
    ("recovery_failures", sa.Integer, "0", "The latest failure streak seen (prior_failures of the recovery)."),
)


def upgrade() -> None:
    for name, kind, default, comment in _COLUMNS:
        op.add_column(
            "health_snapshots",
            sa.Column(name, kind, nullable=False, server_default=sa.text(default), comment=comment),
            schema="rtmanager",
        )
    op.execute(
        "UPDATE rtmanager.health_snapshots SET down_seq = event_seq "
        "WHERE status IN ('exited', 'oom', 'container_disappeared', 'inspect_unhealthy', 'probe_failed')"
    )


def downgrade() -> None:
    for name, *_ in reversed(_COLUMNS):
        op.drop_column("health_snapshots", name, schema="rtmanager")
