"""One store's week as an SVG picture, drawn with matplotlib (object API, SVG backend).

One row per local day, the store's wall clock across; the schedule's opening hours shaded
grey; up and down in the Okabe-Ito blue and orange, which stay apart for every common form of
colour blindness; business time without any observation hatched grey. Text stays text in the
SVG (not paths), which keeps the file small and the labels selectable.
"""

from __future__ import annotations

import functools
import io
import threading
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from storemon_assets.core.timelines import DayRows
from storemon_assets.core.uptime import DOWN, NO_DATA, UP

if TYPE_CHECKING:
    from matplotlib.collections import PolyCollection

COLOURS = {UP: "#0072B2", DOWN: "#E69F00"}  # Okabe-Ito blue and orange
OPEN_HOURS = "#E4E4E4"
NO_DATA_EDGE = "#808080"
LABELS = {UP: "up", DOWN: "down", NO_DATA: "no observation"}


@functools.cache
def _matplotlib_ready() -> None:
    """matplotlib imported and set up at the first picture, not by every process that imports the
    API (`storemon api`'s start, each test worker, each Dagster process pay for it otherwise)."""
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"  # text as <text>, not glyph paths
    matplotlib.rcParams["svg.hashsalt"] = "storemon"  # stable element ids: same data, same bytes


# Figures are independent, but matplotlib keeps some shared state (font cache, rcParams):
# one drawing at a time.
_DRAWING = threading.Lock()


def timeline_svg(rows: DayRows, title: str) -> bytes:
    """The picture of `rows` as SVG bytes.

    Bars are drawn as one collection per kind and labels as plain text (no tick machinery):
    that keeps a picture cheap (docs/performance.md, store timelines).
    """
    _matplotlib_ready()
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    days = len(rows.dates)
    row_of = {date: index for index, date in enumerate(rows.dates)}
    with _DRAWING:
        figure = Figure(figsize=(9, 1.1 + 0.4 * days))
        FigureCanvasSVG(figure)
        bottom, top = 0.55 / (1.1 + 0.4 * days), 1 - 0.55 / (1.1 + 0.4 * days)
        axes = figure.add_axes((0.12, bottom, 0.86, top - bottom))
        axes.set_axis_off()
        axes.set_xlim(0, 24)
        axes.set_ylim(days - 0.5, -0.5)  # oldest day on top

        hours = range(0, 25, 3)
        axes.vlines(list(hours), -0.5, days - 0.5, colors="#C8C8C8", linewidths=0.5, zorder=0)
        axes.add_collection(_bars(rows.business, row_of, 0.42, facecolors=OPEN_HOURS, linewidths=0, zorder=1))
        for status, colour in COLOURS.items():
            axes.add_collection(
                _bars(_only(rows.statuses, status), row_of, 0.3, facecolors=colour, linewidths=0, zorder=2)
            )
        axes.add_collection(
            _bars(
                _only(rows.statuses, NO_DATA),
                row_of,
                0.3,
                facecolors="white",
                edgecolors=NO_DATA_EDGE,
                hatch="////",
                linewidths=0.6,
                zorder=2,
            )
        )
        (start_date, start_hour), (end_date, end_hour) = rows.window_start, rows.window_end
        axes.vlines([start_hour], row_of[start_date] - 0.48, row_of[start_date] + 0.48, colors="black", zorder=3)
        axes.text(start_hour + 0.1, row_of[start_date] - 0.5, "week starts", fontsize=7, va="bottom")
        axes.vlines([end_hour], row_of[end_date] - 0.48, row_of[end_date] + 0.48, colors="black", zorder=3)
        axes.text(end_hour + 0.1, row_of[end_date], "T", fontsize=8, va="center", fontweight="bold", zorder=4)

        for index, date in enumerate(rows.dates):
            axes.text(-0.25, index, date.strftime("%a %d %b"), fontsize=8, ha="right", va="center")
        for hour in hours:
            axes.text(hour, days - 0.45, f"{hour:02d}:00", fontsize=8, ha="center", va="top")
        # The title holds the store's id, opaque text: drawn as it is, `$...$` included (no mathtext).
        figure.text(0.12, 1 - 0.12 / (1.1 + 0.4 * days), title, fontsize=9, va="top", parse_math=False, usetex=False)
        handles = [Patch(facecolor=COLOURS[UP], label=LABELS[UP]), Patch(facecolor=COLOURS[DOWN], label=LABELS[DOWN])]
        handles += [
            Patch(facecolor="white", edgecolor=NO_DATA_EDGE, hatch="////", label=LABELS[NO_DATA]),
            Patch(facecolor=OPEN_HOURS, label="open (schedule)"),
        ]
        figure.legend(handles=handles, loc="lower center", ncols=4, fontsize=8, frameon=False, borderaxespad=0.2)
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
        return out.getvalue()


def _only(frame: pl.DataFrame, status: str) -> pl.DataFrame:
    return frame.filter(pl.col("status") == status)


def _bars(frame: pl.DataFrame, row_of: dict, half_height: float, **style) -> PolyCollection:
    """One rectangle per (local date, from_hour, to_hour) row, centred on its date's row."""
    from matplotlib.collections import PolyCollection

    y = np.array([row_of[date] for date in frame.get_column("local_date").to_list()], dtype=float)
    x0, x1 = frame.get_column("from_hour").to_numpy(), frame.get_column("to_hour").to_numpy()
    lo, hi = y - half_height, y + half_height
    corners = np.stack([np.column_stack(pair) for pair in ((x0, lo), (x0, hi), (x1, hi), (x1, lo))], axis=1)
    return PolyCollection(corners, **style)
