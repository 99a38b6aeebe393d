"""Outbox rows get an identity that a restored database cannot repeat (issue 11, item 6).

A game's outbox rows are numbered 1, 2, ... under the game's lock row, and
Redis remembers per game the last number appended.  A number alone cannot tell
a row from another generation of the database: after a restore from a dump, a
failover to a standby that had not received the newest commits, or a
downgrade that dropped the tables, the counter is behind Redis's mark and the
next rows get numbers that were already appended once, with other contents.

So every row also gets a random ``uid`` and the ``prev_uid`` of its game's row
before it, a chain kept on the game's lock row (``outbox_head``: the uid of the
last row numbered; ``outbox_prev``: the one before, where a statement that
numbers and inserts at once reads it back).  Redis's mark holds the uid of the
last appended row, so "next" means "its predecessor is what was appended
last" — a row from another generation never is.  Rows written before this
migration have no ``prev_uid``; the marks written before it hold no uid, and
for those the numbers are compared as before until the game's next append.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_OUTBOXES = (
    ("rtmanager", "health_event_outbox", "health_snapshots"),
    ("rtmanager", "job_result_outbox", "game_jobs"),
    ("gamemaster", "lobby_outbox", "health_event_cursors"),
)
"""Each outbox with the table of its games' lock rows, in the same schema."""


def upgrade() -> None:
    for schema, table, lock_table in _OUTBOXES:
        for column in _identity_columns():
            op.add_column(table, column, schema=schema)
        _add_chain_head(schema, lock_table)
        _link_existing_rows(schema, table, lock_table)


def _identity_columns() -> tuple[sa.Column[str], sa.Column[str]]:
    uid = sa.Column(
        "uid",
        postgresql.UUID(as_uuid=False),
        nullable=False,
        server_default=sa.text("gen_random_uuid()"),
        comment="This row's identity: random, so no other generation of the database repeats it.",
    )
    prev = sa.Column(
        "prev_uid",
        postgresql.UUID(as_uuid=False),
        nullable=True,
        comment="The uid of the game's row before this one (NULL: the first of its chain).",
    )
    return uid, prev


def _add_chain_head(schema: str, table: str) -> None:
    for name, comment in (
        ("outbox_head", "The uid of the game's last outbox row."),
        ("outbox_prev", "The uid of the outbox row before outbox_head (read back by the statement numbering it)."),
    ):
        op.add_column(
            table,
            sa.Column(name, postgresql.UUID(as_uuid=False), nullable=True, comment=comment),
            schema=schema,
        )


def _link_existing_rows(schema: str, table: str, lock_table: str) -> None:
    """Rows waiting in the outbox now are chained in their order, and each game's head is its newest row."""
    op.execute(
        f"""
        UPDATE {schema}.{table} AS o SET prev_uid = l.prev
        FROM (SELECT id, lag(uid) OVER (PARTITION BY game_id ORDER BY seq) AS prev FROM {schema}.{table}) AS l
        WHERE o.id = l.id
        """
    )
    op.execute(
        f"""
        UPDATE {schema}.{lock_table} AS k SET outbox_head = h.uid
        FROM (SELECT DISTINCT ON (game_id) game_id, uid FROM {schema}.{table} ORDER BY game_id, seq DESC) AS h
        WHERE k.game_id = h.game_id
        """
    )


def downgrade() -> None:
    for schema, table, lock_table in reversed(_OUTBOXES):
        op.drop_column(lock_table, "outbox_prev", schema=schema)
        op.drop_column(lock_table, "outbox_head", schema=schema)
        op.drop_column(table, "prev_uid", schema=schema)
        op.drop_column(table, "uid", schema=schema)
