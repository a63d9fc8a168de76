"""SPEC §10's rules as pure functions (core/access.py) and the token store (db/tokens.py), with
`storemon token ...` and `storemon api`'s refusal to serve an address other than loopback
without a token."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from storemon_assets.core.access import (
    TOKEN_PREFIX,
    Caller,
    ExpiringCache,
    RateLimiter,
    action_of,
    check_token_name,
    cross_site_refusal,
    is_loopback,
    new_token,
    parse_store_list,
    refusal_to_start,
    retry_after_header,
    token_hash,
    trigger_key,
)
from storemon_assets.db.tokens import (
    TokenNameTaken,
    any_token,
    create_token,
    find_token,
    list_tokens,
    record_use,
    revoke_token,
)
from storemon_tests.conftest import copy_of_migrated_sqlite
from storemon_tests.helpers import run_storemon


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- tokens -------------------------------------------------------------------------------


def test_a_token_is_32_random_bytes_and_only_its_sha256_is_kept():
    token = new_token()
    # 32 bytes in URL-safe base64 without padding: ceil(32 * 4 / 3) = 43 characters.
    assert token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + 43
    assert new_token() != token
    assert len(token_hash(token)) == 64 and token not in token_hash(token)


@pytest.mark.parametrize("name", ["", "  ", "a,b", "x" * 65, "tab\there"])
def test_a_bad_token_name_is_refused(name):
    with pytest.raises(ValueError):
        check_token_name(name)


def test_a_store_list_keeps_opaque_ids_and_refuses_an_empty_one():
    assert parse_store_list(None) is None
    assert parse_store_list(" a , b/c ,$x<y>") == {"a", "b/c", "$x<y>"}
    with pytest.raises(ValueError):
        parse_store_list(" , ")


@pytest.fixture
def engine(tmp_path, migrated_sqlite):
    engine = copy_of_migrated_sqlite(migrated_sqlite, tmp_path / "s.db")
    yield engine
    engine.dispose()


def test_tokens_are_created_listed_found_by_hash_and_revoked(engine):
    assert not any_token(engine)
    reader = create_token(engine, "dashboard", "read")
    tenant = create_token(engine, "owner-7", "trigger", frozenset({"s1", "s2"}))
    assert any_token(engine)
    assert [(t.name, t.scope, t.stores) for t in list_tokens(engine)] == [
        ("dashboard", "read", None),
        ("owner-7", "trigger", {"s1", "s2"}),
    ]
    assert find_token(engine, tenant).caller == Caller("owner-7", "trigger", frozenset({"s1", "s2"}))
    assert find_token(engine, reader + "x") is None
    with engine.connect() as conn:  # nothing of the token itself is stored
        stored = json.dumps([list(map(str, row)) for row in conn.exec_driver_sql("SELECT * FROM api_tokens")])
    assert reader not in stored and tenant not in stored and token_hash(reader) in stored
    assert revoke_token(engine, "dashboard") and not revoke_token(engine, "dashboard")
    assert find_token(engine, reader).revoked_at_us is not None
    assert any_token(engine)  # revoking every token must not open the API


def test_a_name_is_never_reused_even_after_revocation(engine):
    create_token(engine, "ci", "trigger")
    revoke_token(engine, "ci")
    with pytest.raises(TokenNameTaken):
        create_token(engine, "ci", "read")


def test_last_used_is_written_in_one_batch(engine):
    token = create_token(engine, "a", "read")
    record_use(engine, {token_hash(token): 1_700_000_000_000_000})
    assert find_token(engine, token).last_used_at_us == 1_700_000_000_000_000


# --- scopes and the open API ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "read", "trigger", "admin"),
    [("read", True, False, False), ("trigger", True, True, False), ("admin", True, True, True)],
)
def test_each_scope_allows_what_spec_10_says(scope, read, trigger, admin):
    caller = Caller("t", scope)
    assert (caller.allows("read"), caller.allows("trigger"), caller.allows("admin")) == (read, trigger, admin)


def test_the_action_of_a_request_is_read_for_get_trigger_for_the_trigger_and_admin_otherwise():
    assert action_of("GET", "get_report") == "read"
    assert action_of("HEAD", "web_page") == "read"
    assert action_of("POST", "trigger_report") == "trigger"
    assert action_of("POST", "something_new") == "admin"
    assert action_of("DELETE", None) == "admin"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "::1", "[::1]", "localhost"])
def test_loopback_addresses_may_serve_open(host):
    assert is_loopback(host) and refusal_to_start(host, tokens_exist=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.4", "storemon.example.com"])
def test_any_other_address_needs_a_token_to_start(host):
    reason = refusal_to_start(host, tokens_exist=False)
    assert reason is not None and "\n" not in reason and host in reason
    assert refusal_to_start(host, tokens_exist=True) is None


# --- cross-site requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "fetch_site", "refused"),
    [
        (None, None, False),  # curl, scripts
        ("http://127.0.0.1:8000", "same-origin", False),  # the page itself
        ("https://127.0.0.1:8000", None, False),  # behind a TLS proxy: scheme aside
        ("http://evil.example", "cross-site", True),
        ("http://evil.example", None, True),
        (None, "cross-site", True),
        ("null", None, True),  # sandboxed frames, file: pages
        ("http://127.0.0.1:9999", "same-site", True),  # another port is another origin
    ],
)
def test_a_state_changing_request_from_another_site_is_refused(origin, fetch_site, refused):
    assert (cross_site_refusal(origin, fetch_site, "127.0.0.1:8000") is not None) == refused


# --- limits --------------------------------------------------------------------------------------


def test_the_rate_limit_lets_a_burst_through_then_one_per_interval():
    clock = Clock()
    limit = RateLimiter(burst=3, per_minute=6, clock=clock)  # one every 60 / 6 = 10 s
    assert [limit.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limit.acquire("a") == pytest.approx(10)  # empty: a whole interval to wait
    assert limit.acquire("b") == 0  # keys are apart
    clock.now += 4
    assert limit.acquire("a") == pytest.approx(6)  # 4 s of the 10 refilled
    clock.now += 6
    assert limit.acquire("a") == 0
    clock.now += 1000
    assert [limit.acquire("a") for _ in range(4)][-1] > 0  # refills to the burst, not beyond


def test_retry_after_is_whole_seconds_rounded_up():
    assert [retry_after_header(w) for w in (0.01, 1.0, 9.2)] == ["1", "1", "10"]


def test_expiring_entries_are_gone_after_their_time_and_the_oldest_beyond_the_size():
    clock = Clock()
    cache = ExpiringCache(ttl=5, size=2, clock=clock)
    cache.put("a", None)  # a remembered "no such thing" is an entry too
    assert cache.get("a") == (True, None)
    clock.now += 5.1
    assert cache.get("a") == (False, None)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") == (False, None) and cache.get("c") == (True, 3)


def test_identical_triggers_share_a_key_and_new_data_or_another_t_do_not():
    key = trigger_key("report_job", None, (3, 1_700_000_000_000_000))
    assert key == trigger_key("report_job", None, (3, 1_700_000_000_000_000))
    assert key != trigger_key("report_job", None, (4, 1_700_000_000_000_001))  # a file was loaded
    assert key != trigger_key("as_of_report_job", "2023-01-24T00:00:00.000000Z", (3, 1_700_000_000_000_000))


# --- the command line ------------------------------------------------------------------------------


def storemon(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`storemon ARGS` in process with its home (and database) in `home`."""
    return run_storemon(*args, env={"STOREMON_HOME": str(home), "STOREMON_DATABASE_URL": None})


def test_token_create_prints_the_token_once_list_shows_it_without_the_token_and_revoke_ends_it(tmp_path):
    created = storemon(tmp_path, "token", "create", "--name", "owner-7", "--scope", "read", "--stores", "s1,s2")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith(TOKEN_PREFIX) and "\n" not in token
    listed = storemon(tmp_path, "token", "list")
    assert listed.returncode == 0 and token not in listed.stdout
    assert listed.stdout.splitlines()[1].split("\t")[:3] == ["owner-7", "read", "s1,s2"]
    assert storemon(tmp_path, "token", "create", "--name", "owner-7", "--scope", "read").returncode == 2
    assert storemon(tmp_path, "token", "revoke", "owner-7").returncode == 0
    assert storemon(tmp_path, "token", "list").stdout.splitlines()[1].split("\t")[5] != ""
    assert storemon(tmp_path, "token", "revoke", "owner-7").returncode == 2


def test_the_api_refuses_to_start_on_an_open_address_without_a_token_in_one_line(tmp_path, monkeypatch):
    import uvicorn

    def serve(*args, **kwargs):  # a server that started anyway fails the test instead of serving
        raise AssertionError("the API started on 0.0.0.0 without a token")

    monkeypatch.setattr(uvicorn, "run", serve)
    refused = run_storemon(
        "api", "--host", "0.0.0.0", "--port", "9", env={"STOREMON_HOME": str(tmp_path), "STOREMON_DATABASE_URL": None}
    )
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and "storemon token create" in refused.stderr
