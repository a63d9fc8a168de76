"""The vocabulary of the three input feeds (SPEC §1, §2), named once for every layer."""

POLLS, HOURS, TIMEZONES = "polls", "hours", "timezones"
FEED_KINDS = (POLLS, HOURS, TIMEZONES)

# SPEC §2: a store with no (valid) timezone row uses this zone.
DEFAULT_TIMEZONE = "America/Chicago"
