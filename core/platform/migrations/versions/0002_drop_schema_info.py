"""Drop schema_info, the version table of the code before Alembic (alembic_version does its work now); a
database made since never had it, hence IF EXISTS (SQLite and PostgreSQL both have it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("schema_info", if_exists=True)


def downgrade() -> None:
    """Nothing to restore: the code before Alembic creates schema_info itself when it is missing."""
