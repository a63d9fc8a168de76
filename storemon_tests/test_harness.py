"""What the test fixtures promise the tests after them (storemon_tests/conftest.py)."""

from __future__ import annotations

import signal

import dagster as dg

from storemon_tests.conftest import stop_signals_kept


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
