"""Several Docker hosts: which one runs a game's container.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "runtime_records",
        sa.Column(
            "docker_host",
            sa.Text,
            nullable=False,
            server_default="",
            comment="GALAXY_DOCKER_HOST_NAME of the host running the container; empty with a single Docker host.",
        ),
        schema="rtmanager",
    )
    op.create_index("runtime_records_host_status_idx", "runtime_records", ["docker_host", "status"], schema="rtmanager")


def downgrade() -> None:
    op.drop_index("runtime_records_host_status_idx", table_name="runtime_records", schema="rtmanager")
    op.drop_column("runtime_records", "docker_host", schema="rtmanager")
