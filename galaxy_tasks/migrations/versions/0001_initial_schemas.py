"""Both schemas with every table of SPEC §4, plus the Game Master consumer's own tables.

Fixed columns keep their SPEC names; every added column has a default or is
nullable, because other flows write these rows knowing only the fixed ones.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS rtmanager")
    op.execute("CREATE SCHEMA IF NOT EXISTS gamemaster")

    op.create_table(
        "runtime_records",
        sa.Column("game_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("current_container_id", sa.Text, nullable=False, server_default=""),
        sa.Column("image_ref", sa.Text, nullable=False, server_default=""),
        sa.Column("engine_endpoint", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        schema="rtmanager",
    )
    op.create_index("runtime_records_status_idx", "runtime_records", ["status"], schema="rtmanager")
    op.create_table(
        "health_snapshots",
        sa.Column("game_id", sa.Text, primary_key=True),
        sa.Column("container_id", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("details", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        schema="rtmanager",
    )
    op.create_table(
        "operation_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("game_id", sa.Text, nullable=False),
        sa.Column("operation", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("error_code", sa.Text, nullable=False, server_default=""),
        sa.Column("error_message", sa.Text, nullable=False, server_default=""),
        sa.Column("container_id", sa.Text, nullable=False, server_default=""),
        sa.Column("image_ref", sa.Text, nullable=False, server_default=""),
        sa.Column("source_entry_id", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=True),
        schema="rtmanager",
    )
    op.create_index("operation_log_game_idx", "operation_log", ["game_id", "id"], schema="rtmanager")

    op.create_table(
        "runtime_records",
        sa.Column("game_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("engine_health", sa.Text, nullable=False, server_default=""),
        sa.Column("current_turn", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        schema="gamemaster",
    )
    op.create_index("runtime_records_status_idx", "runtime_records", ["status"], schema="gamemaster")
    op.create_table(
        "health_event_cursors",
        sa.Column("game_id", sa.Text, primary_key=True),
        sa.Column("last_entry_id", sa.Text, nullable=True),
        sa.Column("last_published_summary", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        schema="gamemaster",
        comment="Per game: last applied runtime:health_events entry and last summary published to the Lobby.",
    )
    op.create_table(
        "lobby_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("game_id", sa.Text, nullable=False),
        sa.Column("stream_entry_id", sa.Text, nullable=False, server_default=""),
        sa.Column("fields", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        schema="gamemaster",
        comment="gm:lobby_events entries committed with their change, waiting for the relay.",
    )
    op.create_index("lobby_outbox_game_idx", "lobby_outbox", ["game_id", "id"], schema="gamemaster")


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS gamemaster CASCADE")
    op.execute("DROP SCHEMA IF EXISTS rtmanager CASCADE")
