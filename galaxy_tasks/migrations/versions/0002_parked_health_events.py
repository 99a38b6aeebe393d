"""Parked health entries: entries that arrived before their game's previous entry was applied.

An entry whose predecessor is not applied yet is stored here (with its fields)
instead of being retried through the broker; the transaction that applies the
predecessor applies the parked successors too, under the same cursor lock.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_event_parked",
        sa.Column("game_id", sa.Text, primary_key=True),
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("prev_entry_id", sa.Text, nullable=True),
        sa.Column("fields", postgresql.JSONB, nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema="gamemaster",
        comment="runtime:health_events entries waiting for the previous entry of their game.",
    )
    op.create_index("health_event_parked_age_idx", "health_event_parked", ["parked_at"], schema="gamemaster")


def downgrade() -> None:
    op.drop_table("health_event_parked", schema="gamemaster")
