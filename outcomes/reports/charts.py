"""Static chart images for the report's e-mail and PDF, drawn with matplotlib (Agg).

Why matplotlib and not kaleido: the Agg backend draws PNGs in-process with no browser
and no network, so it works the same on a laptop, in CI and in a worker container;
kaleido needs a Chromium per render (seconds to start, a moving version contract) for
the same two bar charts. Mail clients strip ``data:`` images, so the PNGs travel as
attachments referenced by Content-ID; the PDF embeds the same bytes.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

# The verdict colours of the pages (static/valuetree/app.css).
COLOURS = {
    "achieved": "#1a7f37",
    "reached": "#3a9348",
    "on_track": "#2da44e",
    "at_risk": "#bf8700",
    "off_track": "#cf222e",
    "missed": "#82071e",
    "too_early": "#d0d7de",
    "no_data": "#8c959f",
    "stale": "#57606a",
}


def headline_png(rows: list[dict[str, Any]], *, previous_title: str | None) -> bytes:
    """A horizontal bar chart of bets and initiatives by status, now (and at the
    previous review, as outlined bars). PNG bytes, 640×280 px at 100 dpi."""
    figure = Figure(figsize=(6.4, 2.8), dpi=100)
    axes = figure.subplots()
    labels = [row["label"] for row in rows]
    positions = list(range(len(rows)))
    axes.barh(
        positions,
        [row["now"] for row in rows],
        color=[COLOURS.get(row["status"], "#57606a") for row in rows],
        height=0.6,
        label="Now",
    )
    if previous_title is not None:
        axes.barh(
            positions,
            [row["before"] or 0 for row in rows],
            fill=False,
            edgecolor="#24292f",
            linestyle="--",
            height=0.6,
            label=f"At {previous_title[:40]}",
        )
        axes.legend(loc="lower right", fontsize=8, frameon=False)
    axes.set_yticks(positions, labels, fontsize=9)
    axes.invert_yaxis()
    axes.set_xlabel("Bets and initiatives", fontsize=9)
    axes.spines[["top", "right"]].set_visible(False)
    axes.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    out = io.BytesIO()
    # No timestamps or software tags: the same data gives the same bytes.
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def report_charts(content: dict[str, Any]) -> dict[str, bytes]:
    """{content_id: PNG bytes} for a report (outcomes/reports/content.py)."""
    return {"headline": headline_png(content["headline"], previous_title=content["previous_title"])}
