"""The vocabulary of the four input feeds (SPEC §1, §2, §4a), named once for every layer."""

POLLS, HOURS, TIMEZONES, SPECIAL = "polls", "hours", "timezones", "special_hours"
FEED_KINDS = (POLLS, HOURS, TIMEZONES, SPECIAL)
# SPEC §1: a file of these kinds replaces the rows of what it names (special hours: the
# store-dates), in delivery order, so one delivered again (even with content loaded before)
# applies again. Polls only ever add.
AUTHORITATIVE_KINDS = (HOURS, TIMEZONES, SPECIAL)

# SPEC §2: a store with no (valid) timezone row uses this zone.
DEFAULT_TIMEZONE = "America/Chicago"
