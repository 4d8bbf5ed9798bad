"""import runs: one row per import (file upload of the API, `datso import`, the sample load), whatever its outcome

`/metrics` reads them at scrape time (`datso_import_runs_total`, `datso_import_rows_total` by layer and outcome),
so imports made by any process (the API's upload in one worker, the CLI in another) are counted alike. No
feature rows are kept here: the per-feature audit is `history`.

Revision ID: 0013
Revises: 0012
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("layer", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_written", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.CheckConstraint("outcome IN ('ok', 'refused', 'database')", name=op.f("ck_import_runs_outcome")),
        sa.CheckConstraint("rows_read >= 0 AND rows_written >= 0", name=op.f("ck_import_runs_rows")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    op.create_index("ix_import_runs_layer_outcome", "import_runs", ["layer", "outcome"])


def downgrade() -> None:
    op.drop_table("import_runs")
