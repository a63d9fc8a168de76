"""What the test fixtures promise the tests after them (storemon_tests/conftest.py)."""

from __future__ import annotations

import signal

import dagster as dg
import pytest

from storemon_tests.conftest import stop_signal_handlers, stop_signals_kept


@dg.asset
def one() -> int:
    return 1


def test_a_dagster_run_leaves_the_stop_signals_as_the_test_found_them(instance):
    # As a shell starts a background job (CI starts pytest so): SIGINT ignored, SIGTERM default.
    sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
    sigterm = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with stop_signals_kept():
            assert dg.materialize([one], instance=instance).success
            # Dagster gave SIGTERM SIGINT's handler: this process, and every process it starts,
            # now ignores SIGTERM (what made test_stopping's `kill <make>` reach nothing).
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, sigint)
        signal.signal(signal.SIGTERM, sigterm)


@pytest.fixture(scope="module")
def a_module_fixtures_dagster_run():
    """A module-scoped fixture's Dagster run, as CI runs pytest (SIGINT ignored), that does not
    put the handlers back: module fixtures are set up before the per-test fixtures."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize([one], instance=instance).success
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # what Dagster left


def test_a_module_fixtures_dagster_run_does_not_reach_the_test(a_module_fixtures_dagster_run, stop_signals_at_start):
    assert stop_signal_handlers() == stop_signals_at_start
