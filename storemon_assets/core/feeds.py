"""The vocabulary of the four input feeds (SPEC §1, §2, §4a), named once for every layer."""

POLLS, HOURS, TIMEZONES, SPECIAL = "polls", "hours", "timezones", "special_hours"
FEED_KINDS = (POLLS, HOURS, TIMEZONES, SPECIAL)

# SPEC §2: a store with no (valid) timezone row uses this zone.
DEFAULT_TIMEZONE = "America/Chicago"
