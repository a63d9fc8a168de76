"""run_retries.ended_for_good: the one answer to "has this run ended, with no retry to come?"."""

from __future__ import annotations

import itertools

import pytest

from storemon_assets.names import AUTO_RETRY_RUN_TAG, WILL_RETRY_TAG
from storemon_assets.run_retries import UNTAGGED_FAILURE_SECONDS, ended_for_good

ENDED_AT = 1_700_000_000.0
WITHIN = ENDED_AT + UNTAGGED_FAILURE_SECONDS - 1  # 59 s after the failure
AFTER = ENDED_AT + UNTAGGED_FAILURE_SECONDS  # 60 s after: the bound itself is past


def expected_for_a_failure(tag: str | None, retries_enabled: bool, now: float) -> bool:
    """The rule, written out: the tag decides; untagged, only run retries within the bound wait."""
    if tag is not None:
        return tag == "false"
    return not (retries_enabled and now == WITHIN)


@pytest.mark.parametrize(
    ("tag", "retries_enabled", "now"), list(itertools.product(["true", "false", None], [True, False], [WITHIN, AFTER]))
)
def test_a_failed_run_has_ended_for_good_unless_its_tag_or_a_recent_untagged_failure_says_a_retry_may_come(
    tag, retries_enabled, now
):
    tags = {} if tag is None else {WILL_RETRY_TAG: tag}
    assert ended_for_good("FAILURE", tags, retries_enabled, ENDED_AT, now) is expected_for_a_failure(
        tag, retries_enabled, now
    )


def test_the_rule_table_has_both_answers_where_it_matters():
    # Untagged with run retries on: waiting at 59 s, failed for good at 60 s (the test above
    # would pass with a rule that ignores the time if this one did not pin both sides).
    assert not ended_for_good("FAILURE", {}, True, ENDED_AT, WITHIN)
    assert ended_for_good("FAILURE", {}, True, ENDED_AT, AFTER)
    assert ended_for_good("FAILURE", {}, False, ENDED_AT, WITHIN)
    assert not ended_for_good("FAILURE", {WILL_RETRY_TAG: "true"}, False, ENDED_AT, AFTER)


@pytest.mark.parametrize("tags", [{}, {WILL_RETRY_TAG: "true"}])
def test_success_and_cancellation_are_final_and_unfinished_runs_have_not_ended(tags):
    for status in ("SUCCESS", "CANCELED"):
        assert ended_for_good(status, tags, True, ENDED_AT, WITHIN)
    for status in ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING"):
        assert not ended_for_good(status, tags, True, None, AFTER)


def test_a_failure_with_no_recorded_end_time_is_judged_by_its_tag_alone():
    assert ended_for_good("FAILURE", {}, True, None, WITHIN)
    assert not ended_for_good("FAILURE", {WILL_RETRY_TAG: "true"}, True, None, WITHIN)


def test_a_failed_run_whose_retry_was_launched_has_ended_for_good():
    # Its retry carries the chain on: the failed run itself is never run again. Without this, a
    # run group with a retried failure never ended, and the start-of-run sweep kept its shards.
    retried = {WILL_RETRY_TAG: "true", AUTO_RETRY_RUN_TAG: "the-retry"}
    assert ended_for_good("FAILURE", retried, True, ENDED_AT, WITHIN)
    assert not ended_for_good("FAILURE", {WILL_RETRY_TAG: "true"}, True, ENDED_AT, AFTER)
