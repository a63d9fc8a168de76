"""`storemon dev`'s Dagster home: the shipped instance settings go in, and stay current, unless
someone edited the copy in the home (issue 16 row 8, and the review's "local edits are lost")."""

from __future__ import annotations

from storemon_assets.dev import install_instance_settings


def test_the_shipped_settings_go_into_a_new_home_and_follow_a_new_release(tmp_path):
    shipped = tmp_path / "dagster.yaml"
    home = tmp_path / "home"
    home.mkdir()
    shipped.write_text("telemetry:\n  enabled: false\n")
    assert install_instance_settings(home, shipped) is None
    assert (home / "dagster.yaml").read_text() == shipped.read_text()
    shipped.write_text("telemetry:\n  enabled: false\nrun_retries:\n  enabled: true\n")  # a new release
    assert install_instance_settings(home, shipped) is None
    assert (home / "dagster.yaml").read_text() == shipped.read_text()


def test_an_edited_copy_is_kept_and_said_so(tmp_path):
    shipped = tmp_path / "dagster.yaml"
    home = tmp_path / "home"
    home.mkdir()
    shipped.write_text("telemetry:\n  enabled: false\n")
    install_instance_settings(home, shipped)
    edited = "telemetry:\n  enabled: false\nrun_monitoring:\n  enabled: true\n"
    (home / "dagster.yaml").write_text(edited)
    message = install_instance_settings(home, shipped)
    assert message is not None and "edited here" in message and str(home / "dagster.yaml") in message
    assert (home / "dagster.yaml").read_text() == edited
    shipped.write_text("telemetry:\n  enabled: false\nrun_retries:\n  enabled: true\n")  # even after an upgrade
    assert install_instance_settings(home, shipped) is not None
    assert (home / "dagster.yaml").read_text() == edited


def test_a_home_made_before_the_record_was_kept_takes_the_shipped_settings(tmp_path):
    """Earlier releases rewrote dagster.yaml at every start and kept no record: such a copy was
    written by storemon, not edited, and is replaced."""
    shipped = tmp_path / "dagster.yaml"
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("an older shipped copy\n")
    shipped.write_text("telemetry:\n  enabled: false\n")
    assert install_instance_settings(home, shipped) is None
    assert (home / "dagster.yaml").read_text() == shipped.read_text()
    assert (home / "dagster.yaml.shipped").read_text() == shipped.read_text()
