"""accounts: users (role, province/commune scope, argon2 password hash), API keys belong to a user, sessions

Existing keys: each key becomes a user of the same name and role, and the key is attached to it. An admin key's
user gets the national scope; an officer key's user gets every province of the 2025 scheme present in
`admin_units` at upgrade time (the reach the key had before), or the national scope when there is none yet
(nothing to scope against). Tighten them afterwards with `datso users …` or PATCH /admin/users/{name}.

Downgrade drops users and sessions; keys stay (without their user).

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("national", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("provinces", sa.ARRAY(sa.String(length=2)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("communes", sa.ARRAY(sa.String(length=5)), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('officer', 'admin')", name=op.f("ck_users_role")),
        sa.CheckConstraint("national OR cardinality(provinces) >= 1", name=op.f("ck_users_scope")),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 100", name=op.f("ck_users_name_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.add_column("api_keys", sa.Column("user_id", sa.Integer(), nullable=True))
    # every existing key gets a user of its name and role (see the module doc for the scope)
    op.execute("""
        INSERT INTO users (name, role, national, provinces)
        SELECT k.name, k.role,
               k.role = 'admin' OR p.codes IS NULL OR cardinality(p.codes) = 0,
               CASE WHEN k.role = 'admin' OR p.codes IS NULL THEN '{}'::varchar(2)[] ELSE p.codes END
        FROM api_keys k
        CROSS JOIN (SELECT array_agg(DISTINCT code ORDER BY code)::varchar(2)[] AS codes FROM admin_units
                    WHERE level = 'province' AND scheme = '2025' AND char_length(code) = 2) p
        ON CONFLICT (name) DO NOTHING
    """)
    op.execute("UPDATE api_keys k SET user_id = u.id FROM users u WHERE u.name = k.name")
    op.alter_column("api_keys", "user_id", nullable=False)
    op.create_foreign_key(op.f("fk_api_keys_user_id_users"), "api_keys", "users", ["user_id"], ["id"],
                          ondelete="CASCADE")
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_user_id"), table_name="api_keys")
    op.drop_constraint(op.f("fk_api_keys_user_id_users"), "api_keys", type_="foreignkey")
    op.drop_column("api_keys", "user_id")
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_table("users")
