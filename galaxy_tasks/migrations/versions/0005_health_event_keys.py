"""Idempotency keys of published health events (the Docker events listener's exactly-once).

The listener saves its position after publishing; a listener killed in between
would publish the same Docker event again after a take-over.  The event's key
(container, action, timeNano) is inserted in the same statement as the snapshot
and the outbox row, so a second publication of the same Docker event writes
nothing.  Keys older than a day are pruned by the reconciler.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_event_keys",
        sa.Column("event_key", sa.Text, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        schema="rtmanager",
        comment="Keys of health events already recorded (the Docker events listener's exactly-once).",
    )
    op.create_index("health_event_keys_age_idx", "health_event_keys", ["created_at"], schema="rtmanager")


def downgrade() -> None:
    op.drop_table("health_event_keys", schema="rtmanager")
