"""Configuration (SPEC §7): every STOREMON_* variable is declared once in settings.SETTINGS, the
README's table (with the feature tables in docs/, for a feature's own settings) says the same, and
each documented default is the one the code applies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from storemon_assets import settings
from storemon_assets.settings import SETTINGS, Setting

README = Path(__file__).resolve().parent.parent / "README.md"
DOCS = README.parent / "docs"
ROW = re.compile(r"^\| `(?P<name>[A-Z_]+)` \| (?P<meaning>.*?) \| (?P<default>.*?) \|$")


def readme_configuration_table() -> dict[str, tuple[str, str]]:
    """The rows of the README's "Configuration" table: variable -> (meaning, default)."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return {m["name"]: (m["meaning"], m["default"]) for m in map(ROW.match, section.splitlines()) if m}


def docs_configuration_rows() -> dict[str, tuple[str, str]]:
    """STOREMON_* rows of the "Configuration" tables in docs/*.md (a feature documents its own settings)."""
    rows = {}
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        if "\n## Configuration\n" in text:
            section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
            rows |= {m["name"]: (m["meaning"], m["default"]) for m in map(ROW.match, section.splitlines()) if m}
    return rows


def test_readme_configuration_table_is_settings_SETTINGS():
    table = readme_configuration_table()
    assert "DAGSTER_HOME" in table  # the parser reads the table (a row that is not ours)
    table = docs_configuration_rows() | table
    documented = {name: row for name, row in table.items() if name.startswith("STOREMON_")}
    declared = {s.name: (s.meaning, s.default) for s in SETTINGS}
    expected_rows = "\n".join(f"| `{s.name}` | {s.meaning} | {s.default} |" for s in SETTINGS)
    assert documented == declared, f"the README's rows should read:\n{expected_rows}"


def test_every_declared_setting_is_in_SETTINGS_once():
    declared = [value for value in vars(settings).values() if isinstance(value, Setting)]
    assert set(declared) == set(SETTINGS)
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names)) and all(name.startswith("STOREMON_") for name in names)


@pytest.fixture
def unset(monkeypatch, tmp_path) -> Path:
    """Every STOREMON_* variable unset except STOREMON_HOME, which points at a fresh folder."""
    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.setenv(settings.HOME.name, str(tmp_path))
    return tmp_path.resolve()


def test_documented_defaults_are_the_ones_applied(unset):
    home = unset
    assert settings.database_url() == f"sqlite:///{home}/data/storemon.db"  # `sqlite:///<home>/data/storemon.db`
    assert settings.landing_dir() == home / "data" / "landing"
    assert settings.reports_dir() == home / "data" / "reports"
    assert settings.as_of_setting() == ""  # unset: the latest poll
    assert settings.dagster_url() == "http://127.0.0.1:3000"
    assert settings.max_store_partitions() == 100_000
    for setting, shown in [
        (settings.DATABASE_URL, "`sqlite:///<home>/data/storemon.db`"),
        (settings.DATA_DIR, "`<home>/data/landing`"),
        (settings.REPORTS_DIR, "`<home>/data/reports`"),
        (settings.DAGSTER_URL, "`http://127.0.0.1:3000`"),
        (settings.MAX_STORE_PARTITIONS, "`100000`"),
    ]:
        assert setting.default == shown


def test_home_defaults_to_the_checkout(monkeypatch):
    monkeypatch.delenv(settings.HOME.name, raising=False)
    assert settings.storemon_home() == README.parent  # "the repository root in a checkout"


def test_a_set_variable_wins_and_blank_counts_as_unset(unset, monkeypatch):
    monkeypatch.setenv(settings.DAGSTER_URL.name, " http://dagster:3000/ ")
    monkeypatch.setenv(settings.AS_OF.name, "   ")
    assert settings.dagster_url() == "http://dagster:3000"
    assert settings.as_of_setting() == "" and not settings.is_set(settings.AS_OF)


def test_a_bad_partition_limit_names_the_variable(unset, monkeypatch):
    monkeypatch.setenv(settings.MAX_STORE_PARTITIONS.name, "lots")
    with pytest.raises(ValueError, match="STOREMON_MAX_STORE_PARTITIONS='lots' is not a whole number"):
        settings.max_store_partitions()


def test_scale_out_settings_default_to_one_process_and_name_the_variable_when_wrong(unset, monkeypatch):
    assert (settings.report_shards(), settings.executor_name()) == (1, "in_process")  # `1`, `in_process`
    assert settings.celery_broker() == "redis://127.0.0.1:6379/0"
    for setting, shown in [
        (settings.REPORT_SHARDS, "`1`"),
        (settings.EXECUTOR, "`in_process`"),
        (settings.CELERY_BROKER, "`redis://127.0.0.1:6379/0`"),
    ]:
        assert setting.default == shown
    monkeypatch.setenv(settings.REPORT_SHARDS.name, "0")
    with pytest.raises(ValueError, match="STOREMON_REPORT_SHARDS='0' is not a whole number of at least 1"):
        settings.report_shards()
    monkeypatch.setenv(settings.EXECUTOR.name, "k8s")
    with pytest.raises(ValueError, match="STOREMON_EXECUTOR='k8s' is not one of in_process, multiprocess, celery"):
        settings.executor_name()


def test_alert_settings_default_as_documented_and_name_the_variable_when_wrong(unset, monkeypatch):
    assert settings.alert_urls() == [] and settings.public_url() is None  # unset: no alerts, no links
    assert (settings.alert_min_down_minutes(), settings.alert_max_per_message()) == (30, 20)
    assert settings.stale_after_minutes() == 120
    for setting, shown in [
        (settings.ALERT_MIN_DOWN_MINUTES, "`30`"),
        (settings.ALERT_MAX_PER_MESSAGE, "`20`"),
        (settings.STALE_AFTER_MINUTES, "`120`"),
    ]:
        assert setting.default == shown
    monkeypatch.setenv(settings.ALERT_URLS.name, " json://127.0.0.1:9/a   ntfy://topic ")
    monkeypatch.setenv(settings.PUBLIC_URL.name, "https://storemon.example/")
    assert settings.alert_urls() == ["json://127.0.0.1:9/a", "ntfy://topic"]  # space-separated
    assert settings.public_url() == "https://storemon.example"
    monkeypatch.setenv(settings.ALERT_MAX_PER_MESSAGE.name, "0")
    with pytest.raises(ValueError, match="STOREMON_ALERT_MAX_PER_MESSAGE='0' is not a whole number of at least 1"):
        settings.alert_max_per_message()


@pytest.mark.parametrize(
    "value", [None, "", "   ", " sqlite:////tmp/x.db ", "60", " 7.5 ", "-1", "lots", "http://h:1/"]
)
def test_a_value_read_without_pydantic_is_the_one_pydantic_gives(unset, monkeypatch, value):
    # Unset and blank variables are their defaults, and plain text variables their trimmed text,
    # without pydantic (settings._get); every setting's value must equal the checked one, or the
    # same refusal. Whether it is set (settings.is_set, also without pydantic) is whether pydantic
    # took it from the environment; a refused value is set.
    for setting in SETTINGS:
        if setting.field == "home":
            continue  # the fixture's folder
        if value is None:
            monkeypatch.delenv(setting.name, raising=False)
        else:
            monkeypatch.setenv(setting.name, value)
        try:
            checked = getattr(settings.load(setting.field), setting.field)
        except ValueError as refusal:
            with pytest.raises(ValueError, match=re.escape(str(refusal))):
                settings._get(setting.field)
            assert settings.is_set(setting), setting.name
        else:
            light = settings._get(setting.field)
            assert (light, type(light)) == (checked, type(checked)), setting.name
            taken = setting.field in settings.load(setting.field).model_fields_set
            assert settings.is_set(setting) == taken, setting.name
        monkeypatch.delenv(setting.name, raising=False)


def test_the_database_url_and_busy_timeout_are_read_without_importing_pydantic(unset):
    # `storemon daily` reads only these two; pydantic-settings would cost it ~0.07 s of CPU.
    import subprocess
    import sys

    code = (
        "import sys; from storemon_assets import settings; "
        "settings.database_url(); settings.sqlite_busy_timeout(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_settings')))"
    )
    environment = {"STOREMON_HOME": str(unset), "STOREMON_DATABASE_URL": " sqlite:////tmp/x.db ", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # The check sees pydantic when a value needs it (a set number).
    environment["STOREMON_SQLITE_BUSY_TIMEOUT"] = "5"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    assert "pydantic_settings" in done.stdout
