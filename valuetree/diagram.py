"""The tree as a picture for a slide: SVG (and PNG from it) and a Mermaid flowchart.

One layout for the page's download links and the API (``GET /api/trees/<slug>/diagram/``):
vision → goals → bets → initiatives from left to right, one column per level, leaves
stacked top to bottom and every parent centred on its children; connectors are cubic
curves from a parent's right edge to each child's left edge. Boxes carry the kind, the
title (two lines at most; the whole title is the box's SVG ``<title>``), the rolled-up
verdict (a coloured dot and the status in words) and, optionally, each measure's
current value. Killed nodes are grey and carry "Killed" instead of a verdict. A legend
of the verdict colours closes the picture.

Verdicts and measure states come through ``valuetree.sections`` (outcomes fills them),
so this module never imports ``outcomes`` (DESIGN.md §2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape as html_escape
from typing import Any

from valuetree import sections, selectors
from valuetree.models import ValueTree
from valuetree.outline import KIND_LABELS, LEGEND, format_amount

FORMATS = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "mermaid": "text/plain; charset=utf-8",
}
EXTENSIONS = {"svg": "svg", "png": "png", "mermaid": "mmd"}

# The verdict colours of static/css/valuetree.css (and outcomes/dashboard.py).
VERDICT_COLOURS = {
    "achieved": "#1b7837",
    "reached": "#3a9348",
    "on_track": "#5aae61",
    "at_risk": "#f1a340",
    "off_track": "#d6604d",
    "missed": "#8e0152",
    "stale": "#8073ac",
    "too_early": "#d9d9d9",
    "no_data": "#bababa",
}
KIND_COLOURS = {"vision": "#1d2433", "goal": "#6941c6", "bet": "#1570ef", "initiative": "#0e9384"}
GREY = "#bababa"

BOX_W, COL_GAP, ROW_GAP, MARGIN = 240, 56, 12, 16
LINE = 15  # px per text line
TITLE_CHARS = 34  # per line, at 12 px in a 240 px box


# Characters XML 1.0 cannot hold at all (C0 controls but tab and line breaks, lone
# surrogates, U+FFFE/U+FFFF): one in a title made the SVG unreadable and the PNG a 500.
# A name may hold them (an export and import give back every text exactly, issue 14):
# the drawings leave them out.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    """``text`` for SVG text or an attribute: markup and quotes escaped, and characters
    XML cannot hold dropped (a vertical tab or form feed, a line break, is a space)."""
    return html_escape(_NOT_XML.sub("", text.replace("\x0b", " ").replace("\x0c", " ")))


@dataclass
class _Box:
    node: dict[str, Any]
    depth: int
    height: int
    children: list[_Box] = field(default_factory=list)
    y: float = 0.0  # top


def _lines(text: str, width: int = TITLE_CHARS, most: int = 2) -> list[str]:
    """Words wrapped into at most ``most`` lines of ``width`` characters (the last one
    cut with "…")."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if len(current) + 1 + len(word) <= width or not current:
            current = f"{current} {word}".strip()
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return [line if len(line) <= width else line[: width - 1] + "…" for line in lines] or [""]


def diagram_data(tree: ValueTree) -> dict[str, Any]:
    """The tree document with its nodes' verdicts and measures' states, for the
    exports. A constant number of queries (the tree page's)."""
    verdicts, states = sections.tree_view_states(tree.pk)
    return {"document": selectors.tree_get(tree=tree), "verdicts": verdicts, "states": states}


def _measure_lines(node: dict[str, Any], states: dict[int, dict[str, Any]]) -> list[tuple]:
    """(status, text) per measure; a killed node's measures are "no_data" (grey), as
    the page's diagram draws them."""
    killed = node.get("status") == "killed"
    rows = []
    for m in node.get("measures") or []:
        state = states.get(m["id"]) or {}
        value = state.get("latest_value")
        shown = format_amount(value, m.get("unit")) if value is not None else "no value yet"
        text = f"{m['name']}: {shown}"
        if len(text) > TITLE_CHARS + 2:
            text = text[: TITLE_CHARS + 1] + "…"
        rows.append(("no_data" if killed else state.get("status") or "no_data", text))
    return rows


def _build(
    node: dict[str, Any], depth: int, states: dict[int, dict[str, Any]], measures: bool
) -> _Box:
    title = _lines(node["title"])
    extra = len(_measure_lines(node, states)) if measures else 0
    height = 26 + LINE * len(title) + 18 + (LINE * extra + 4 if extra else 0)
    box = _Box(node=node, depth=depth, height=height)
    box.children = [_build(child, depth + 1, states, measures) for child in node["children"]]
    return box


def _place(box: _Box, top: float) -> float:
    """Give ``box`` and its subtree their y; return the bottom of the subtree."""
    if not box.children:
        box.y = top
        return top + box.height
    bottom = top
    for child in box.children:
        bottom = _place(child, bottom) + ROW_GAP
    bottom -= ROW_GAP
    first, last = box.children[0], box.children[-1]
    centre = (first.y + first.height / 2 + last.y + last.height / 2) / 2
    box.y = max(top, centre - box.height / 2)
    return max(bottom, box.y + box.height)


def render_svg(data: dict[str, Any], *, measures: bool = True) -> str:
    """The tree as a standalone SVG document (UTF-8 text)."""
    document, verdicts, states = data["document"], data["verdicts"], data["states"]
    vision = {
        "id": 0,
        "kind": "vision",
        "title": document["vision"] or document["name"],
        "status": "active",
        "children": document["goals"],
        "measures": [],
    }
    root = _build(vision, 0, states, measures)
    bottom = _place(root, MARGIN)
    boxes: list[_Box] = []
    stack = [root]
    while stack:
        box = stack.pop()
        boxes.append(box)
        stack.extend(reversed(box.children))
    depth = max(box.depth for box in boxes)
    legend = (*LEGEND, ("killed", "Killed"))
    # As wide as the legend too: a tree of a vision and a goal is narrower than it.
    width = MARGIN * 2 + max(
        (depth + 1) * BOX_W + depth * COL_GAP, sum(_legend_step(label) for _, label in legend)
    )
    legend_y = bottom + 28
    height = int(legend_y + 24)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
        f'font-size="12" role="img" aria-label="{escape(document["name"])}">'
        f"<title>{escape(document['name'])}</title>"
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>'
    ]
    for box in boxes:  # connectors under the boxes
        x1 = MARGIN + box.depth * (BOX_W + COL_GAP) + BOX_W
        y1 = box.y + box.height / 2
        for child in box.children:
            x2 = x1 + COL_GAP
            y2 = child.y + child.height / 2
            mid = x1 + COL_GAP / 2
            parts.append(
                f'<path d="M{x1},{y1:.1f} C{mid},{y1:.1f} {mid},{y2:.1f} {x2},{y2:.1f}" '
                'fill="none" stroke="#98a2b3" stroke-width="1.5"/>'
            )
    for box in boxes:
        parts.append(_svg_box(box, verdicts, states, measures))
    x = MARGIN
    for status, label in legend:
        colour = VERDICT_COLOURS.get(status, "#ffffff")
        stroke = ' stroke="#98a2b3"' if status == "killed" else ""
        parts.append(
            f'<circle cx="{x + 6}" cy="{legend_y}" r="6" fill="{colour}"{stroke}/>'
            f'<text x="{x + 16}" y="{legend_y + 4}" fill="#1d2433">{label}</text>'
        )
        x += _legend_step(label)
    parts.append("</svg>")
    return "".join(parts)


def _legend_step(label: str) -> int:
    """The width one legend entry takes: its dot, its words (about 7 px a character at
    12 px) and the gap after."""
    return 24 + 7 * len(label)


def _svg_box(
    box: _Box,
    verdicts: dict[int, tuple[str, str]],
    states: dict[int, dict[str, Any]],
    measures: bool,
) -> str:
    node = box.node
    kind = node["kind"]
    killed = node.get("status") == "killed"
    x = MARGIN + box.depth * (BOX_W + COL_GAP)
    y = box.y
    stripe = GREY if killed else KIND_COLOURS[kind]
    fill = "#eef0f4" if killed else "#ffffff"
    ink = "#667085" if killed else "#1d2433"
    kind_label = "Vision" if kind == "vision" else KIND_LABELS[kind]
    faded = ' opacity="0.7"' if killed else ""
    out = [
        f'<g class="box" data-kind="{kind}"{faded}>'
        f"<title>{escape(kind_label)}: {escape(node['title'])}</title>"
        f'<rect x="{x}" y="{y:.1f}" width="{BOX_W}" height="{box.height}" rx="6" '
        f'fill="{fill}" stroke="#d8dce5"/>'
        f'<rect x="{x}" y="{y:.1f}" width="5" height="{box.height}" rx="2" fill="{stripe}"/>'
        f'<text x="{x + 14}" y="{y + 16:.1f}" font-size="10" font-weight="bold" '
        f'fill="#5b6478">{kind_label.upper()}</text>'
    ]
    line_y = y + 16
    for line in _lines(node["title"]):
        line_y += LINE
        decoration = ' text-decoration="line-through"' if killed else ""
        out.append(
            f'<text x="{x + 14}" y="{line_y:.1f}" font-weight="bold" fill="{ink}"{decoration}>'
            f"{escape(line)}</text>"
        )
    if kind != "vision":
        line_y += LINE + 2
        if killed:
            out.append(f'<text x="{x + 14}" y="{line_y:.1f}" fill="#667085">Killed</text>')
        else:
            status, label = verdicts.get(node["id"], ("no_data", "No data"))
            colour = VERDICT_COLOURS.get(status, GREY)
            word = label.split(" (")[0]
            out.append(
                f'<circle cx="{x + 19}" cy="{line_y - 4:.1f}" r="5" fill="{colour}"/>'
                f'<text x="{x + 29}" y="{line_y:.1f}" fill="{ink}">{escape(word)}</text>'
            )
        if measures:
            for status, text in _measure_lines(node, states):
                line_y += LINE
                colour = VERDICT_COLOURS.get(status, GREY)
                out.append(
                    f'<circle cx="{x + 19}" cy="{line_y - 4:.1f}" r="3.5" fill="{colour}"/>'
                    f'<text x="{x + 27}" y="{line_y:.1f}" font-size="11" fill="#5b6478">'
                    f"{escape(text)}</text>"
                )
    out.append("</g>")
    return "".join(out)


# cairo draws no surface wider or taller than 32,767 px (a 1,000-initiative tree is
# ~70,000 px tall at twice the size: a 500); the pixel cap keeps one PNG's memory
# (4 bytes a pixel) near 160 MB. Below half size the text cannot be read any more.
PNG_MAX_SIDE = 32_767
PNG_MAX_PIXELS = 40_000_000
PNG_MIN_SCALE = 0.5


class TooLargeForPng(ValueError):
    """The tree's picture is too large to draw as a readable PNG (the SVG has no limit)."""


def render_png(data: dict[str, Any], *, measures: bool = True, scale: float = 2.0) -> bytes:
    """The SVG drawn as a PNG (twice the size by default, sharp on a projector; smaller
    when that would pass cairo's or memory's limits). Raises TooLargeForPng when even
    half size would."""
    import cairosvg

    svg = render_svg(data, measures=measures)
    width, height = (int(v) for v in re.search(r'width="(\d+)" height="(\d+)"', svg).groups())
    scale = min(
        scale, PNG_MAX_SIDE / max(width, height), (PNG_MAX_PIXELS / (width * height)) ** 0.5
    )
    if scale < PNG_MIN_SCALE:
        raise TooLargeForPng(
            f"The tree is too large for a readable PNG ({width} × {height} px): "
            "download the SVG or the Mermaid text instead."
        )
    return cairosvg.svg2png(bytestring=svg.encode(), scale=scale)


def _mermaid_text(text: str) -> str:
    """Text inside a Mermaid ``["…"]`` label, shown as typed: on one line (any run of
    whitespace, a vertical tab too, is one space); ``#`` as an entity first, so text
    that looks like one ("#quot;") stays text; ``%`` too, since Mermaid reads a
    ``%%{init: …}%%`` directive anywhere in the document, labels included; then quotes,
    brackets and markup."""
    text = _NOT_XML.sub("", " ".join(text.split()))
    return (
        html_escape(text.replace("#", "#35;").replace("%", "#37;"), quote=False)
        .replace('"', "#quot;")
        .replace("[", "#91;")
        .replace("]", "#93;")
    )


def render_mermaid(data: dict[str, Any], *, measures: bool = True) -> str:
    """The tree as a Mermaid flowchart (left to right), one class per verdict."""
    document, verdicts, states = data["document"], data["verdicts"], data["states"]
    lines = [
        "flowchart LR",
        f'  vision["Vision: {_mermaid_text(document["vision"] or document["name"])}"]',
    ]
    edges: list[str] = []
    stack = [("vision", goal) for goal in reversed(document["goals"])]
    while stack:
        parent, node = stack.pop()
        ident = f"n{node['id']}"
        label = f"{KIND_LABELS[node['kind']]}: {node['title']}"
        if node["status"] == "killed":
            status, word = "killed", "Killed"
        else:
            status, word = verdicts.get(node["id"], ("no_data", "No data"))
            word = word.split(" (")[0]
        text = f"{_mermaid_text(label)}<br/>{_mermaid_text(word)}"
        if measures:
            for _, measure in _measure_lines(node, states):
                text += f"<br/><small>{_mermaid_text(measure)}</small>"
        lines.append(f'  {ident}["{text}"]:::{status}')
        edges.append(f"  {parent} --> {ident}")
        stack.extend((ident, child) for child in reversed(node["children"]))
    lines.extend(edges)
    for status, colour in VERDICT_COLOURS.items():
        ink = (
            "#fff"
            if status in {"achieved", "reached", "missed", "off_track", "stale"}
            else "#1d2433"
        )
        lines.append(f"  classDef {status} fill:{colour},color:{ink},stroke:#667085")
    lines.append("  classDef killed fill:#eef0f4,color:#667085,stroke:#bababa,stroke-dasharray:4")
    return "\n".join(lines) + "\n"


def diagram_export(tree: ValueTree, *, fmt: str, measures: bool = True) -> tuple[bytes, str, str]:
    """(body, content type, file name) of the tree's diagram in ``fmt`` (a key of
    ``FORMATS``). Raises ValueError for another format, TooLargeForPng (a ValueError)
    for a PNG too large to draw."""
    if fmt not in FORMATS:
        raise ValueError(f"Use one of: {', '.join(FORMATS)}.")
    data = diagram_data(tree)
    if fmt == "svg":
        body = render_svg(data, measures=measures).encode()
    elif fmt == "png":
        body = render_png(data, measures=measures)
    else:
        body = render_mermaid(data, measures=measures).encode()
    return body, FORMATS[fmt], f"{tree.slug}.{EXTENSIONS[fmt]}"
