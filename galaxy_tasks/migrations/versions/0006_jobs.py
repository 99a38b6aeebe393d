"""Start/stop jobs: a per-game row jobs hold, the job-result outbox, job identity in operation_log.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "game_jobs",
        sa.Column("game_id", sa.Text, primary_key=True),
        sa.Column("result_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema="rtmanager",
        comment="One row per game: a job holds it (FOR UPDATE) for its whole run; numbers the game's job results.",
    )
    op.create_table(
        "job_result_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("game_id", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("fields", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema="rtmanager",
        comment="runtime:job_results entries committed with their job, waiting for the relay.",
    )
    op.create_index(
        "job_result_outbox_game_seq_idx", "job_result_outbox", ["game_id", "seq"], unique=True, schema="rtmanager"
    )
    op.add_column("operation_log", sa.Column("job_id", sa.Text, nullable=True), schema="rtmanager")
    op.add_column(
        "operation_log", sa.Column("engine_endpoint", sa.Text, nullable=False, server_default=""), schema="rtmanager"
    )
    op.add_column("operation_log", sa.Column("reason", sa.Text, nullable=False, server_default=""), schema="rtmanager")
    op.create_index(
        "operation_log_job_id_idx",
        "operation_log",
        ["job_id"],
        unique=True,
        schema="rtmanager",
        postgresql_where=sa.text("job_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("operation_log_job_id_idx", table_name="operation_log", schema="rtmanager")
    op.drop_column("operation_log", "reason", schema="rtmanager")
    op.drop_column("operation_log", "engine_endpoint", schema="rtmanager")
    op.drop_column("operation_log", "job_id", schema="rtmanager")
    op.drop_table("job_result_outbox", schema="rtmanager")
    op.drop_table("game_jobs", schema="rtmanager")
