"""The reports' charts, drawn with matplotlib as SVG to inline in the HTML: no script, no external asset.

The output is deterministic (a fixed `svg.hashsalt` per chart, no date in the metadata), so the same report
renders to the same bytes. Bars are drawn unclipped (they stay inside their axes anyway), so the SVG has no
`url(...)` reference at all, only `#` links to its own glyphs. Text is drawn as glyph paths, and labels (issuer
names come from certificates, which servers choose) are never parsed as mathtext; the only text left in the SVG
is matplotlib's escaped comments. The figure API is used without pyplot, so no GUI backend and no global figure
registry is involved; a lock keeps matplotlib's process-wide settings to one chart at a time when reports render
in worker threads.
"""

import io
import threading
from collections.abc import Sequence
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

from services.reporter.domain.compliance import Distribution
from services.reporter.domain.report import LEVELS
from services.reporter.domain.trends import DayCount, WeekCount

#: The report stylesheet's level colours.
LEVEL_COLOURS = {"critical": "#c62828", "warning": "#ef8f00", "info": "#1e6fd9", "ok": "#2e7d32"}
BAR_COLOUR = "#1e5bb8"
MAX_BARS = 10
MAX_LABEL = 48
_SIZE = (7.5, 2.8)
_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "path",
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


class Charts:
    """Makes the SVG of each chart a report shows; each method answers None when there is nothing to draw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _svg(self, figure: Figure, salt: str) -> str:
        """The figure as an `<svg>` element (no XML declaration or doctype, which do not belong inside HTML)."""
        buffer = io.StringIO()
        settings: dict[RcKeyType, Any] = {**_RC, "svg.hashsalt": salt}
        with rc_context(settings):
            figure.savefig(buffer, format="svg", metadata={"Date": None})
        text = buffer.getvalue()
        return text[text.index("<svg") :]

    def levels_over_time(self, days: Sequence[DayCount]) -> str | None:
        """Targets per level on each day, stacked, most severe on top."""
        if not days:
            return None
        with self._lock, rc_context(_RC):
            figure = Figure(figsize=_SIZE, layout="constrained")
            axes = figure.add_subplot()
            labels = [d.day.strftime("%m-%d") for d in days]
            bottom = [0] * len(days)
            for level in reversed(LEVELS):
                values = [d.by_level.get(level, 0) for d in days]
                axes.bar(
                    labels, values, bottom=bottom, color=LEVEL_COLOURS[level], label=level, width=0.7, clip_on=False
                )
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            axes.set_ylabel("targets")
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
            return self._svg(figure, "levels")

    def expirations_ahead(self, weeks: Sequence[WeekCount]) -> str | None:
        """Certificates expiring in each coming week."""
        if not weeks:
            return None
        with self._lock, rc_context(_RC):
            figure = Figure(figsize=_SIZE, layout="constrained")
            axes = figure.add_subplot()
            axes.bar(
                [w.week_start.strftime("%m-%d") for w in weeks],
                [w.count for w in weeks],
                color=BAR_COLOUR,
                clip_on=False,
            )
            axes.set_ylabel("certificates")
            axes.set_xlabel("week starting")
            return self._svg(figure, "expirations")

    def distribution(self, items: Sequence[Distribution], *, name: str) -> str | None:
        """Horizontal bars of the most common `MAX_BARS` values, the rest as one "other" bar; `name` tells the
        charts of one page apart."""
        if not items:
            return None
        shown = [(_label(d.label), d.count) for d in items[:MAX_BARS]]
        if rest := sum(d.count for d in items[MAX_BARS:]):
            shown.append((f"{len(items) - MAX_BARS} others", rest))
        with self._lock, rc_context(_RC):
            figure = Figure(figsize=(_SIZE[0], 0.8 + 0.28 * len(shown)), layout="constrained")
            axes = figure.add_subplot()
            positions = list(range(len(shown)))
            axes.barh(positions, [n for _, n in shown], color=BAR_COLOUR, clip_on=False)
            axes.set_yticks(positions, [label for label, _ in shown])
            axes.invert_yaxis()
            axes.set_xlabel("certificates")
            return self._svg(figure, f"distribution-{name}")
