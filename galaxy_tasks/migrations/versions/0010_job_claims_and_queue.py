"""Start/stop jobs claim their game instead of holding a transaction open, and wait in a per-game queue.

Until now a job held its game's ``game_jobs`` row ``FOR UPDATE`` for its whole
run, Docker calls and image pulls included: a migration (or any other flow on
those rows) queued behind it.  Now a job *claims* the game in a short
transaction (``claim_job_id``, a new ``claim_epoch``, ``claimed_at``, the
record status its mark may replace), does the Docker work with no transaction
open, and commits its outcome only if the claim is still its own (the epoch
fences a job that overran its bound and was cleared by the periodic pass).

``job_queue`` holds every job handed on and not yet answered, with its order
key (the stream entry id, or the Redis time of a shell call; the job id breaks
ties): the game's jobs are taken lowest first, one at a time, whichever worker
runs them, and a job before the newest one applied (``applied_ms``,
``applied_seq``, ``applied_job_id``) is answered ``superseded``.  A queued job nobody is running is found by the
periodic pass and run again (its message was lost).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("game_jobs", sa.Column("claim_job_id", sa.Text, nullable=True), schema="rtmanager")
    op.add_column(
        "game_jobs", sa.Column("claim_epoch", sa.BigInteger, nullable=False, server_default="0"), schema="rtmanager"
    )
    op.add_column("game_jobs", sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True), schema="rtmanager")
    op.add_column("game_jobs", sa.Column("claim_prev_status", sa.Text, nullable=True), schema="rtmanager")
    op.add_column(
        "game_jobs", sa.Column("applied_ms", sa.BigInteger, nullable=False, server_default="0"), schema="rtmanager"
    )
    op.add_column(
        "game_jobs", sa.Column("applied_seq", sa.BigInteger, nullable=False, server_default="0"), schema="rtmanager"
    )
    op.add_column(
        "game_jobs", sa.Column("applied_job_id", sa.Text, nullable=False, server_default=""), schema="rtmanager"
    )
    op.create_table(
        "job_queue",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("game_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("order_ms", sa.BigInteger, nullable=False),
        sa.Column("order_seq", sa.BigInteger, nullable=False),
        sa.Column("image_ref", sa.Text, nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("invalid", sa.Text, nullable=True),
        sa.Column("source_entry_id", sa.Text, nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema="rtmanager",
        comment="Jobs handed on and not yet answered; per game, run lowest order key first.",
    )
    op.create_index("job_queue_game_order_idx", "job_queue", ["game_id", "order_ms", "order_seq"], schema="rtmanager")


def downgrade() -> None:
    op.drop_index("job_queue_game_order_idx", table_name="job_queue", schema="rtmanager")
    op.drop_table("job_queue", schema="rtmanager")
    for column in (
        "applied_job_id",
        "applied_seq",
        "applied_ms",
        "claim_prev_status",
        "claimed_at",
        "claim_epoch",
        "claim_job_id",
    ):
        op.drop_column("game_jobs", column, schema="rtmanager")
