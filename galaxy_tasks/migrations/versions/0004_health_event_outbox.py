"""The Runtime Manager's health-event outbox, numbered per game under its health snapshot row.

Publishing a health event upserts ``rtmanager.health_snapshots`` and inserts
the stream entry into ``rtmanager.health_event_outbox`` in one transaction;
``health_snapshots.event_seq`` gives out the game's entry numbers (the upsert
locks the row, so per game the numbers follow commit order).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "health_snapshots",
        sa.Column("event_seq", sa.BigInteger, nullable=False, server_default="0"),
        schema="rtmanager",
    )
    op.create_table(
        "health_event_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("game_id", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("fields", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema="rtmanager",
        comment="runtime:health_events entries committed with their snapshot, waiting for the relay.",
    )
    op.create_index(
        "health_event_outbox_game_seq_idx", "health_event_outbox", ["game_id", "seq"], unique=True, schema="rtmanager"
    )


def downgrade() -> None:
    op.drop_table("health_event_outbox", schema="rtmanager")
    op.drop_column("health_snapshots", "event_seq", schema="rtmanager")
