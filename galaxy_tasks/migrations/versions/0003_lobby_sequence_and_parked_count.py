"""Per-game Lobby snapshot numbers and a parked-entry count on the cursor.

* ``lobby_outbox.seq`` numbers a game's snapshots (1, 2, ...) and
  ``health_event_cursors.lobby_seq`` holds the last number given out, so a task
  can append its just-committed snapshot straight after commit when it is the
  game's next one, without a second transaction (the relay's high-water mark in
  Redis moves from outbox ids to these numbers: ``gamemaster:lobby_outbox:published_seq``).
* ``health_event_cursors.parked_count`` lets the per-event transaction skip the
  parking read when nothing of the game is parked (nearly always).

Rows already in the outbox are numbered in id order and will be appended by
the relay under the new mark.  Let the relay empty the outbox before upgrading
(``galaxy-tasks status`` shows its backlog): a row appended by the old relay but
not yet deleted when the upgrade runs would be appended once more.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "health_event_cursors",
        sa.Column("lobby_seq", sa.BigInteger, nullable=False, server_default="0"),
        schema="gamemaster",
    )
    op.add_column(
        "health_event_cursors",
        sa.Column("parked_count", sa.Integer, nullable=False, server_default="0"),
        schema="gamemaster",
    )
    op.add_column("lobby_outbox", sa.Column("seq", sa.BigInteger, nullable=True), schema="gamemaster")
    op.execute(
        """
        UPDATE gamemaster.lobby_outbox AS o SET seq = n.seq
        FROM (SELECT id, row_number() OVER (PARTITION BY game_id ORDER BY id) AS seq
              FROM gamemaster.lobby_outbox) AS n
        WHERE o.id = n.id
        """
    )
    op.execute(
        """
        UPDATE gamemaster.health_event_cursors AS c SET lobby_seq = m.seq
        FROM (SELECT game_id, max(seq) AS seq FROM gamemaster.lobby_outbox GROUP BY game_id) AS m
        WHERE c.game_id = m.game_id
        """
    )
    op.execute(
        """
        UPDATE gamemaster.health_event_cursors AS c SET parked_count = p.n
        FROM (SELECT game_id, count(*) AS n FROM gamemaster.health_event_parked GROUP BY game_id) AS p
        WHERE c.game_id = p.game_id
        """
    )
    op.alter_column("lobby_outbox", "seq", nullable=False, schema="gamemaster")
    op.drop_index("lobby_outbox_game_idx", table_name="lobby_outbox", schema="gamemaster")
    op.create_index("lobby_outbox_game_seq_idx", "lobby_outbox", ["game_id", "seq"], unique=True, schema="gamemaster")


def downgrade() -> None:
    op.drop_index("lobby_outbox_game_seq_idx", table_name="lobby_outbox", schema="gamemaster")
    op.create_index("lobby_outbox_game_idx", "lobby_outbox", ["game_id", "id"], schema="gamemaster")
    op.drop_column("lobby_outbox", "seq", schema="gamemaster")
    op.drop_column("health_event_cursors", "parked_count", schema="gamemaster")
    op.drop_column("health_event_cursors", "lobby_seq", schema="gamemaster")
