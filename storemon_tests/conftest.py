"""Shared fixtures: a throw-away storemon home with real resources pointing into it."""

from __future__ import annotations

import functools
import gc
import json
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

# Dagster, polars, SQLAlchemy and storemon_assets are imported where a fixture needs them, not here:
# pytest-xdist's controller loads this file too, and runs no test (~1.3 s of CPU before the
# workers even start).
if TYPE_CHECKING:
    from storemon_assets.defs.resources import LandingFolder, ReportsFolder, StoremonDatabase

REPO = Path(__file__).resolve().parent.parent

# `make test-fast` (the edit loop) loads this profile: every property test runs an eighth of its
# examples (`examples()` in helpers.py scales each test's count by max_examples / 100; a test with
# no count of its own runs 12 of 100): the windowed reads 18 of 150, the literal SPEC reading 24 of
# 200. `make test` and CI load no profile: the full counts.
settings.register_profile("fast", max_examples=12)
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_finish(session):
    """The modules the test files imported (Dagster, polars, SQLAlchemy, FastAPI, storemon: ~200,000
    objects that live until the end) are set aside from the garbage collector: its full collections,
    a dozen or more per worker, then trace only what the tests made (~0.1 s each before). A worker
    collects; pytest-xdist's controller does not, so it never gets here."""
    gc.collect()
    gc.freeze()


def pytest_unconfigure(config):
    """Nothing more is collected at exit: the interpreter's last collections over everything a
    worker made took ~1 s per worker after its last test (the suite waits for both workers to exit).
    What is still open then is closed by the operating system as the process ends, as before."""
    gc.freeze()


@dataclass
class StoremonHome:
    root: Path
    database: StoremonDatabase
    landing: LandingFolder
    reports: ReportsFolder

    @property
    def resources(self) -> dict:
        from storemon_assets.defs.resources import REPORT_SHARDS_IO_MANAGER, ReportShardsIOManager

        return {
            "database": self.database,
            "landing": self.landing,
            "reports": self.reports,
            REPORT_SHARDS_IO_MANAGER: ReportShardsIOManager(reports_path=self.reports.path),
        }

    @classmethod
    def in_folder(cls, root: Path, database: Path) -> StoremonHome:
        """A home in `root` whose database is a copy of the SQLite file `database` (e.g.
        `migrated_sqlite`, empty at the current schema), with its landing and reports folders beside it."""
        from storemon_assets.defs.resources import LandingFolder, ReportsFolder, StoremonDatabase
        from storemon_assets.settings import sqlite_url

        shutil.copyfile(database, root / "storemon.db")
        return cls(
            root=root,
            database=StoremonDatabase(url=sqlite_url(root / "storemon.db")),
            landing=LandingFolder(path=str(root / "landing"), settle_seconds=0),
            reports=ReportsFolder(path=str(root / "reports")),
        )

    def drop(self, *sources: Path) -> list[Path]:
        """Copy files into the landing folder, as a feed delivery would."""
        self.landing.folder.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copy(source, self.landing.folder / source.name)) for source in sources]


@pytest.fixture
def home(tmp_path: Path, migrated_sqlite: Path) -> StoremonHome:
    """A storemon home whose database exists, empty at the current schema (a copy of `migrated_sqlite`)."""
    return StoremonHome.in_folder(tmp_path, migrated_sqlite)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_signal_handlers() -> dict:
    """The stop signals' handlers now, by signal."""
    return {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}


@contextmanager
def stop_signals_kept():
    """The SIGINT and SIGTERM handlers as they were before the block, whatever it did to them.

    Every in-process Dagster run (`dg.materialize`, `execute_in_process`) ends by setting SIGTERM's
    handler to SIGINT's (dagster._utils.interrupts, "map SIGTERM to SIGINT (for k8s)"). Where
    pytest runs as a shell's background job (CI), SIGINT is ignored, so after the first run the
    whole process ignored SIGTERM too, and every process a later test started inherited that
    (GNU make keeps an ignored SIGTERM ignored: test_stopping's `kill <make>` reached nothing)."""
    saved = stop_signal_handlers()
    try:
        yield
    finally:
        _restore_stop_signals(saved)


def _restore_stop_signals(saved: dict) -> None:
    for sig, handler in saved.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)


@pytest.fixture(scope="session", autouse=True)
def stop_signals_at_start() -> dict:
    """The stop signals' handlers as the session began, before any fixture ran Dagster."""
    return stop_signal_handlers()


@pytest.fixture(autouse=True)
def stop_signals_restored(stop_signals_at_start):
    """Each test starts and ends with the stop signals' handlers as the session began: a module
    fixture's Dagster run (`sample_run`, `loaded_database`), set up before this fixture, reaches
    neither the test nor the processes it starts (`stop_signals_kept` says what Dagster does)."""
    _restore_stop_signals(stop_signals_at_start)
    yield
    _restore_stop_signals(stop_signals_at_start)


@pytest.fixture(scope="session", autouse=True)
def dagster_migrations_read_once():
    """Every Dagster instance in memory (the `instance` fixture, `dg.materialize` without one)
    stamps its run and event storages with Alembic, which reads and executes Dagster's ~90
    migration scripts at each stamp: ~30 ms of the ~40 ms an instance costs, paid a few hundred
    times a run. Those scripts do not change while the tests run, so each worker reads them once
    (one `ScriptDirectory` per Dagster configuration); the storages are stamped as before.
    Storemon's own migrations (storemon_assets/db/migrations) are read as they always are."""
    from alembic.script import ScriptDirectory

    real = ScriptDirectory.__dict__["from_config"]
    directories: dict[tuple, ScriptDirectory] = {}

    def from_config(cls, config):
        location = config.get_alembic_option("script_location")
        if not (isinstance(location, str) and location.startswith("dagster:")):
            return real.__func__(cls, config)
        key = (cls, location, config.config_file_name)
        if key not in directories:
            directories[key] = real.__func__(cls, config)
        return directories[key]

    ScriptDirectory.from_config = classmethod(from_config)
    yield
    ScriptDirectory.from_config = real


@pytest.fixture
def instance():
    """A throw-away Dagster instance (runs, events, dynamic partitions) for one test: in memory,
    as `dg.materialize` makes by default; ~30x cheaper to create than `dg.instance_for_test()`."""
    import dagster as dg

    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def sample_files() -> list[Path]:
    from storemon_assets.settings import SAMPLE_DATA_DIR

    return sorted(SAMPLE_DATA_DIR.glob("*.csv"))


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data set lives beside the repository)")
    return path


def required_server_url(variable: str, server: str, script: str) -> str:
    """The URL of a server `.ci/run` starts (with `script`): skip locally without it, fail in CI."""
    url = os.environ.get(variable)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{variable} is not set: .ci/run starts {server} and must export it")
        pytest.skip(f"no {server}: run `export {variable}=$({script})`")
    return url


def postgres_url() -> str:
    """The test PostgreSQL database; CI must have one. Under pytest-xdist (`make test-fast`) each
    worker gets a database of its own, `<test database>_<worker>`, so tests that empty it run
    side by side."""
    url = required_server_url("STOREMON_TEST_POSTGRES_URL", "PostgreSQL", "scripts/start_postgres.sh")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return _worker_database(url, worker) if worker else url


@functools.cache
def _worker_database(url: str, worker: str) -> str:
    return _fresh_database(url, worker)


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def chromium() -> tuple[Path, Path]:
    """The system's Chromium and its driver (Debian's `chromium`, `chromium-driver`); CI must have them."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        message = f"no browser: {', '.join(missing)} missing (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: .ci/run installs them")
        pytest.skip(message)
    return CHROMIUM, CHROMEDRIVER


def redis_url() -> str:
    """The test Redis server (the Celery broker); CI must have one."""
    return required_server_url("STOREMON_TEST_REDIS_URL", "Redis", "scripts/start_redis.sh")


def fresh_postgres_database(suffix: str) -> str:
    """A new, empty database `<test database>_<suffix>` on the test server (dropped first if it
    exists); returns its URL. The test role may create databases (scripts/start_postgres.sh)."""
    return _fresh_database(postgres_url(), suffix)


def _fresh_database(server_url: str, suffix: str) -> str:
    import sqlalchemy as sa

    url = sa.make_url(server_url)
    name = f"{url.database}_{suffix}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            # A commit returns before its WAL reaches the disk: a crash of the server could lose the
            # last commits of a throw-away database, nothing a test observes; every commit (each
            # migration, load and publication) no longer waits for a flush.
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def dagster_postgres_env(database_url: str) -> dict[str, str]:
    """The variables deploy/dagster.yaml reads, for a PostgreSQL URL."""
    import sqlalchemy as sa

    url = sa.make_url(database_url)
    return {
        "DAGSTER_POSTGRES_HOST": url.host or "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(url.port or 5432),
        "DAGSTER_POSTGRES_USER": url.username or "",
        "DAGSTER_POSTGRES_PASSWORD": url.password or "",
        "DAGSTER_POSTGRES_DB": url.database or "",
    }


def empty_postgres_engine():
    """An engine on the test database with every table in it dropped."""
    import sqlalchemy as sa

    from storemon_assets.db.engine import create_db_engine

    engine = create_db_engine(postgres_url())
    existing = sa.MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)
    return engine


def fresh_postgres_engine():
    """An engine on the test database with storemon's tables at the current schema and empty.

    Running every migration costs about half a second on PostgreSQL, so the first call in a
    worker migrates and notes the schema's fingerprint; later calls find that same schema and
    only empty the tables that hold rows (TRUNCATE) and restart the sequences. A database whose
    schema differs (a test dropped, added or changed something, or emptied it for a migration
    test) is rebuilt as before.
    """
    import sqlalchemy as sa

    from storemon_assets.db.engine import create_db_engine
    from storemon_assets.db.migrate import upgrade_schema

    url = postgres_url()
    engine = create_db_engine(url)
    with engine.begin() as conn:
        if _MIGRATED_FINGERPRINT.get(url) == _schema_fingerprint(conn):
            tables = [name for name in sa.inspect(conn).get_table_names() if name != "alembic_version"]
            # Only the tables holding rows are emptied (TRUNCATE gives each table and index a new
            # file: ~20-100 ms for all 18, most of them empty after a test), and every sequence
            # starts again at 1, as RESTART IDENTITY did for all of them.
            conn.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
            holding = conn.exec_driver_sql(
                " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in tables)
            ).scalars()
            if filled := list(holding):
                conn.exec_driver_sql(f"TRUNCATE {', '.join(filled)} CASCADE")
            conn.exec_driver_sql(
                "SELECT setval(c.oid, 1, false) FROM pg_class c"
                " WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"
            )
            return engine
    engine.dispose()
    engine = empty_postgres_engine()
    upgrade_schema(engine)
    with engine.connect() as conn:
        _MIGRATED_FINGERPRINT[url] = _schema_fingerprint(conn)
    return engine


# PostgreSQL URL -> fingerprint of its schema right after fresh_postgres_engine migrated it.
_MIGRATED_FINGERPRINT: dict[str, str] = {}


def _schema_fingerprint(conn) -> str:
    """Every column, index and constraint of the public schema, and the recorded revision."""
    import sqlalchemy as sa

    parts = conn.execute(
        sa.text(
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' '"
            " || coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public'"
            " UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " UNION ALL SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace"
        )
    ).scalars()
    fingerprint = sorted(parts)
    if sa.inspect(conn).has_table("alembic_version"):
        fingerprint += conn.execute(sa.text("SELECT 'revision ' || version_num FROM alembic_version")).scalars().all()
    return "\n".join(fingerprint)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """An empty SQLite database at the current schema, made once per worker: a test copies the
    file (well under a millisecond) instead of running every migration (~70 ms)."""
    from storemon_assets.db.engine import open_database
    from storemon_assets.settings import sqlite_url

    path = tmp_path_factory.mktemp("migrated") / "storemon.db"
    open_database(sqlite_url(path)).dispose()
    return path


def copy_of_migrated_sqlite(template: Path, path: Path):
    """An engine on a copy of the `migrated_sqlite` database at `path`."""
    from storemon_assets.db.engine import create_db_engine
    from storemon_assets.settings import sqlite_url

    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return create_db_engine(sqlite_url(path))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path, migrated_sqlite):
    """An empty storemon database at the current schema, on each database storemon runs on."""
    if request.param == "postgresql":
        engine = fresh_postgres_engine()
    else:
        engine = copy_of_migrated_sqlite(migrated_sqlite, tmp_path / "storemon.db")
    yield engine
    engine.dispose()


@pytest.fixture
def small_disk(tmp_path: Path):
    """A folder on a file system of its own, 1 MiB (a tmpfs), for tests of a full disk; call
    `fill()` on it to leave no byte free. Needs root (mount); skipped without it."""
    import subprocess

    folder = tmp_path / "small_disk"
    folder.mkdir()
    mounted = os.geteuid() == 0 and (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True).returncode
        == 0
    )
    if not mounted:
        pytest.skip("a full disk is simulated with a tmpfs, which needs root (mount -t tmpfs)")
    try:
        yield SmallDisk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@dataclass
class SmallDisk:
    folder: Path

    def fill(self) -> None:
        """Write a filler file until the file system refuses another byte."""
        with open(self.folder / "filler", "ab", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"x" * 4096)
            except OSError:
                pass


@dataclass
class Receiver:
    """A webhook receiver: records every JSON body posted to it; answers 503 while `down`."""

    port: int = 0
    messages: list[dict] = field(default_factory=list)
    down: bool = False

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def titles(self) -> list[str]:
        return [m["title"] for m in self.messages]


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1 that alerts reach through an Apprise `json://` URL."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if state.down:
                self.send_response(503)
                self.end_headers()
                return
            state.messages.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    # serve_forever looks for shutdown() every poll_interval: at the default 0.5 s each test
    # waited ~0.5 s in teardown for nothing.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
