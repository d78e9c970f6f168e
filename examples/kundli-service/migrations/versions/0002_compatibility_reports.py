"""Release 1.1.0: stored compatibility reports; per-chart ayanamsa.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-02
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from kundli.settings import fault_enabled

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("charts", sa.Column("ayanamsa", sa.Text, nullable=False, server_default="lahiri"))
    op.create_table(
        "compatibility_reports",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("chart_a", sa.BigInteger, sa.ForeignKey("charts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("chart_b", sa.BigInteger, sa.ForeignKey("charts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("points", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("kootas", JSONB, nullable=False),
        sa.Column("manglik_match", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    if fault_enabled("broken_downgrade"):
        op.execute("DROP TABLE compatibility_reports_does_not_exist")
    op.drop_table("compatibility_reports")
    op.drop_column("charts", "ayanamsa")
