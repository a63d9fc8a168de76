"""A store's own page: `/stores/{id}` as a browser asks for it (Accept: text/html).

Rendered on the server from the same fields as the JSON, with no script (its style is the served
/static/store.css: the Content-Security-Policy forbids inline style): status now, the week's
timeline, the incidents, the 90-day strip, the report row and the opening hours. Every value that comes from data
(a store id is hostile text) goes through `html.escape`; links carry the id percent-encoded.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' "
    "height='16' rx='3' fill='%230072B2'/%3E%3C/svg%3E"
)
_SAYS = {"up": "Up", "down": "Down", "closed": "Closed", "no_data": "No data"}


def wants_html(accept: str | None) -> bool:
    """Whether the client prefers HTML: a browser's navigation (text/html listed before any JSON).
    `Accept: application/json`, `*/*` and no header at all keep the JSON."""
    accept = (accept or "").lower()
    html_at, json_at = accept.find("text/html"), accept.find("application/json")
    return html_at >= 0 and (json_at < 0 or html_at < json_at)


def _rows(cells: list[list[object]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in cells)


def _status_section(now: dict | None) -> str:
    if now is None:
        return "<p>Not computed yet: the next report run computes it.</p>"
    since = ""
    if now["since_utc"]:
        since = f" since {escape(now['since_utc'])} ({escape(now['since_local'] or '')} local)"
    elif now["status"] in ("down", "closed"):
        since = " for longer than the week"
    poll = (
        f"Newest poll {escape(now['newest_poll_utc'])}, {now['newest_poll_age_minutes']:,.0f} minutes before T."
        if now["newest_poll_utc"]
        else "No poll yet."
    )
    silent = (
        "<p><strong>Not reporting</strong>: it is open, but its newest poll is older than the stale limit, so "
        "its status is a guess.</p>"
        if now["not_reporting"]
        else ""
    )
    return (
        f'<p class="now" data-status="{escape(now["status"])}">{_SAYS[now["status"]]}{since}</p>'
        f'<p class="muted">{poll}</p>{silent}'
    )


def _incidents_section(incidents: list[dict]) -> str:
    if not incidents:
        return "<p>No down business time in the week before T.</p>"
    rows = _rows(
        [
            [
                i["started_utc"],
                i["started_local"],
                "still down" if i["open"] else i["ended_utc"],
                f"{i['downtime_minutes']:,.2f}",
            ]
            for i in incidents
        ]
    )
    return (
        '<table><caption class="muted">Closed time between down stretches does not end an incident.</caption>'
        "<thead><tr><th>started (UTC)</th><th>started (local)</th><th>ended (UTC)</th>"
        f"<th>business minutes down</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def strip_band(business_minutes: float, uptime_share: float | None) -> str:
    """A day's bar class in the 90-day strip (static/strip.css); app.js's `dailyStrip` uses the
    same bands for the fleet page."""
    if business_minutes == 0:
        return "closed"
    if uptime_share is None:
        return "unknown"
    return (
        "up"
        if uptime_share >= 0.995
        else "mostly"
        if uptime_share >= 0.95
        else "partly"
        if uptime_share >= 0.8
        else "down"
    )


def _daily_section(store_id: str, daily: list[dict]) -> str:
    if not daily:
        return "<p>No daily values yet.</p>"
    bars = "".join(
        f'<span class="{strip_band(d["business_minutes"], d["uptime_share"])}" title="{escape(d["date"])}: '
        f"{d['uptime_minutes']:.2f} min up, {d['downtime_minutes']:.2f} min down of {d['business_minutes']:.2f} "
        f"business minutes"
        + ("" if d["uptime_share"] is None else f" ({100 * d['uptime_share']:.2f} % up)")
        + '"></span>'
        for d in daily
    )
    label = escape(f"Daily uptime of store {store_id}, {daily[0]['date']} to {daily[-1]['date']}")
    return (
        f'<div class="strip" role="img" aria-label="{label}">{bars}</div>'
        '<p class="muted">One bar per local date, oldest first; hover for its minutes. Grey: closed all day, or '
        "no observation at all. A date without polls takes the status of the nearest poll, as every number here "
        "does (even before the first poll).</p>"
    )


def render_store_page(detail: dict, stale_warning: str | None) -> str:
    """The page of one store from its JSON fields (StoreDetail with status_now and incidents)."""
    store_id = detail["store_id"]
    shown_id = escape(store_id)
    report = detail["report"]
    report_rows = _rows(
        [
            ["last hour (min)", report["uptime_last_hour"], report["downtime_last_hour"]],
            ["last day (h)", report["uptime_last_day"], report["downtime_last_day"]],
            ["last week (h)", report["uptime_last_week"], report["downtime_last_week"]],
        ]
    )
    hours = _rows([[h["day"], h["opens"], h["closes"]] for h in detail["schedule"]])
    warning = f'<section class="warning" role="alert"><p>{escape(stale_warning)}</p></section>' if stale_warning else ""
    separator = "&" if "?" in detail["timeline_svg"] else "?"  # the query form already has one
    picture = escape(f"{detail['timeline_svg']}{separator}report={quote(detail['report_id'], safe='')}")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>store {shown_id} · storemon</title>
<link rel="icon" href="{ICON}">
<link rel="stylesheet" href="/static/store.css">
<link rel="stylesheet" href="/static/strip.css">
</head>
<body>
<header><h1><a href="/">storemon</a> › store {shown_id}</h1></header>
<main>
{warning}
<section aria-labelledby="now-heading">
<h2 id="now-heading">Status now</h2>
{_status_section(detail.get("status_now"))}
<p class="muted">As of {escape(detail["as_of"])} (T) · timezone {escape(detail["timezone"])} ·
report {escape(detail["report_id"][:8])}</p>
</section>
<section aria-labelledby="week-heading">
<h2 id="week-heading">The week before T</h2>
<img src="{picture}" alt="When store {shown_id} was up or down in the week before T, one row per local day">
<table><thead><tr><th>window</th><th>uptime</th><th>downtime</th></tr></thead><tbody>{report_rows}</tbody></table>
</section>
<section aria-labelledby="incidents-heading">
<h2 id="incidents-heading">Incidents</h2>
{_incidents_section(detail.get("incidents") or [])}
</section>
<section aria-labelledby="daily-heading">
<h2 id="daily-heading">The last 90 days</h2>
{_daily_section(store_id, detail.get("daily") or [])}
</section>
<section aria-labelledby="hours-heading">
<h2 id="hours-heading">Opening hours</h2>
<table><thead><tr><th>day</th><th>opens</th><th>closes</th></tr></thead><tbody>{hours}</tbody></table>
<p class="muted">Local wall-clock time; a closing time at or before the opening time is the next day.</p>
</section>
</main>
</body>
</html>
"""
