"""The API tokens in the storemon database (table `api_tokens`): create, list, revoke, look up.

Only a token's hash is stored (core/access.py). A revoked token keeps its row (and its name),
so `token list` shows who had access and a revoked token can never come back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from storemon_assets.core.access import Caller, check_scope, check_token_name, new_token, token_hash
from storemon_assets.core.instants import now_us
from storemon_assets.core.tables import API_TOKENS
from storemon_assets.db.schema import SQL_TABLES

_TOKENS = SQL_TABLES[API_TOKENS.name]


@dataclass(frozen=True)
class TokenInfo:
    """A token as `token list` shows it (never the token itself)."""

    name: str
    scope: str
    stores: frozenset[str] | None
    created_at_us: int
    last_used_at_us: int | None
    revoked_at_us: int | None

    @property
    def caller(self) -> Caller:
        return Caller(self.name, self.scope, self.stores)


def _info(row) -> TokenInfo:
    stores = frozenset(json.loads(row.stores)) if row.stores is not None else None
    return TokenInfo(row.name, row.scope, stores, row.created_at_us, row.last_used_at_us, row.revoked_at_us)


class TokenNameTaken(ValueError):
    """A token of that name exists (revoked ones included: names are never reused)."""


def create_token(engine: sa.Engine, name: str, scope: str, stores: frozenset[str] | None = None) -> str:
    """Store a new token's hash; returns the token itself (the only time it exists in clear)."""
    name, scope = check_token_name(name), check_scope(scope)
    token = new_token()
    row = {
        "token_hash": token_hash(token),
        "name": name,
        "scope": scope,
        "stores": json.dumps(sorted(stores)) if stores is not None else None,
        "created_at_us": now_us(),
    }
    try:
        with engine.begin() as conn:
            conn.execute(_TOKENS.insert().values(**row))
    except sa.exc.IntegrityError:
        raise TokenNameTaken(f"a token named {name!r} exists already (revoked names are not reused)") from None
    return token


def list_tokens(engine: sa.Engine) -> list[TokenInfo]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_TOKENS).order_by(_TOKENS.c.name)).all()
    return [_info(row) for row in rows]


def revoke_token(engine: sa.Engine, name: str) -> bool:
    """Revoke the token named `name`; False if there is no such unrevoked token."""
    with engine.begin() as conn:
        done = conn.execute(
            _TOKENS.update()
            .where(_TOKENS.c.name == name.strip(), _TOKENS.c.revoked_at_us.is_(None))
            .values(revoked_at_us=now_us())
        )
    return done.rowcount == 1


def any_token(engine: sa.Engine) -> bool:
    """Whether any token was ever created (revoked ones count: revoking every token must not open
    the API)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(_TOKENS.c.name).limit(1)).first() is not None


def find_token(engine: sa.Engine, token: str) -> TokenInfo | None:
    """The token's record by its hash (an index lookup), or None for a token never issued."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(_TOKENS).where(_TOKENS.c.token_hash == token_hash(token))).first()
    return _info(row) if row else None


def record_use(engine: sa.Engine, last_used_us: dict[str, int]) -> None:
    """Write the last-used instants gathered in memory, by token hash (one statement per batch)."""
    if not last_used_us:
        return
    with engine.begin() as conn:
        conn.execute(
            _TOKENS.update()
            .where(_TOKENS.c.token_hash == sa.bindparam("hash"))
            .values(last_used_at_us=sa.bindparam("used")),
            [{"hash": h, "used": used} for h, used in last_used_us.items()],
        )
