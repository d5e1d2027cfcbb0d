"""HTML for the tree page's outline and diagram, node by node.

Why Python and not a template: the page must draw a 10,000-node tree within 3× the
whole-tree API's time (issue 3). Measured on this project's 2-core machine, 10,000
simple rows took 644 ms in Django templates, 134 ms in Jinja2 and 19 ms as Python
strings. So the per-node markup lives here, in one place used by the full page and
by every htmx fragment that re-draws a node; the page around it is a template.

Every piece of user text goes through ``_e`` (html.escape, quotes included). The
outline's fixed symbols (⠿ … →) are character references: a tree whose text is ASCII
then draws as an ASCII string (a byte a character), which the page's template and the
UTF-8 encoding copy several times faster than a string holding one non-ASCII character
(two or four bytes a character): the 10,000-node page's template took 535 ms with
them as characters and 188 ms as references, measured under load (bench/editor.py).
"""

from __future__ import annotations

import math
from decimal import Decimal
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from valuetree.models import CHILD_KIND, NodeKind

KIND_LABELS = {NodeKind.GOAL: "Goal", NodeKind.BET: "Bet", NodeKind.INITIATIVE: "Initiative"}
PLURALS = {NodeKind.GOAL: "goals", NodeKind.BET: "bets", NodeKind.INITIATIVE: "initiatives"}


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


class _Escaped(dict):
    """Escaped text by its raw text, for one drawing: a 10,000-node page escapes the
    same few statuses, kinds, owners, units and verdict words on every card, and a
    lookup costs a fraction of ``html.escape``'s five replacements. Strings only (as
    keys, 1 and True would collide)."""

    def __init__(self) -> None:
        super().__init__()
        self.badges: dict[tuple[Any, ...], str] = {}  # verdict badges drawn (_badge)

    def __missing__(self, text: str) -> str:
        escaped = self[text] = escape(str(text), quote=True)
        return escaped


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float | Decimal) and value == int(value):
        return str(int(value))
    return str(value)


def format_number(value: Any) -> str:
    """A figure for people: thousands separated, no trailing zeros, three significant
    digits below 100 (60000.00 → "60,000"; 1234.5 → "1,234.5"; 0.12345 → "0.123").
    None → "—"."""
    if value is None:
        return "—"
    if type(value) is int:
        return f"{value:,}"
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return str(value)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if abs(number) >= 100:
        return f"{number:,.1f}".rstrip("0").rstrip(".")
    text = f"{number:.3g}"
    if "e" in text and abs(number) >= 1e-12:
        # A small rate in decimals (0.0000034), as the verdict's reason writes it: an
        # exponent ("3.4e-06") reads as a typo to most people.
        rounded = float(text)
        text = f"{rounded:.{2 - math.floor(math.log10(abs(rounded)))}f}".rstrip("0")
    return text


def format_figure(value: Any) -> str:
    """A changed field's value for people: a number as ``format_number`` writes it
    (20.0 → "20"), anything else (a date, a word) as it is; None → "—"."""
    if value is None:
        return "—"
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return format_number(value)
    return str(value)


def format_amount(value: Any, unit: str | None = "") -> str:
    """An amount with its unit ("60,000 EUR", "12 person-weeks"); None → "—". A stored
    amount (a Decimal of two places) is shown exactly, trailing zeros dropped
    ("12.5 person-weeks"): never "1,234,567.9 EUR" for 1,234,567.89."""
    if value is None:
        return "—"
    if isinstance(value, Decimal) and value.is_finite() and value != value.to_integral_value():
        return f"{value.normalize():,f} {unit}".strip()
    return f"{format_number(value)} {unit}".strip()


def plural(count: int, singular: str, many: str | None = None) -> str:
    """ "1 initiative", "2 initiatives", "0 bets"."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def _status_words(status: str) -> str:
    return status.replace("_", " ").capitalize() if status else "No verdict yet"


def verdict_badge(status: str | None, label: str | None = None, reason: str | None = "") -> str:
    """The one drawing of a verdict, wherever one appears (outline, diagram, node page,
    dashboard tables through the ``verdict`` template tag): a coloured dot and the
    status in words; the reason shows on hover and, as the badge takes the focus when it
    has one, on keyboard focus. A status this code does not know is drawn grey with its
    name in words, so new statuses never break a page."""
    return _badge(status, label, reason, None)


def _badge(status: str | None, label: str | None, reason: str | None, badges: dict | None) -> str:
    """``verdict_badge``, remembered in ``badges`` (one drawing's memo, or None): the
    cards of a page repeat the same few verdicts."""
    if badges is not None:
        key = (status, label, reason)
        badge = badges.get(key)
        if badge is None:
            badge = badges[key] = _badge(status, label, reason, None)
        return badge
    status = status or ""
    label = label or _status_words(status)
    if not reason:
        return (
            f'<span class="verdict" data-verdict="{_e(status)}">'
            f'<span class="verdict__dot"></span><span class="verdict__word">{_e(label)}</span>'
            "</span>"
        )
    # The reason is read with the word by screen readers (visually hidden, not
    # display:none) and pops up on hover and keyboard focus.
    return (
        f'<span class="verdict" data-verdict="{_e(status)}" tabindex="0">'
        f'<span class="verdict__dot"></span><span class="verdict__word">{_e(label)}</span>'
        f'<span class="verdict__reason">{_e(reason)}</span></span>'
    )


def _trend(points: list[float]) -> str:
    first, last = points[0], points[-1]
    if last > first:
        return "rising"
    if last < first:
        return "falling"
    return "flat"


# The x coordinates of a sparkline's points by their count, each with its comma
# ("10,", "80,", …): the same few counts recur on every card of a page.
_SPARK_X: dict[int, tuple[str, ...]] = {}


def sparkline(points: list[float], *, label: str = "Recent values") -> str:
    """The newest values as a small inline SVG line (80×20 px, drawn in a 800×200
    viewBox so coordinates are whole numbers), drawn on the server so the page needs no
    request and no script. ``label`` is HTML-escaped text; the text alternative adds
    the count and the trend (the latest value is shown beside it in words). Fewer than
    two points: nothing."""
    count = len(points)
    if count < 2:
        return ""
    xs = _SPARK_X.get(count)
    if xs is None:
        step = 780 // (count - 1)
        xs = _SPARK_X[count] = tuple(f"{10 + i * step}," for i in range(count))
    low = min(points)
    span = (max(points) - low) or 1.0
    scale = 180 / span
    ys = [str(190 - int((value - low) * scale)) for value in points]
    line = " ".join([x + y for x, y in zip(xs, ys, strict=True)])
    return (
        f'<svg class="sparkline" width="80" height="20" viewBox="0 0 800 200" role="img" '
        f'aria-label="{label}: {count} values, {_trend(points)}"><polyline points="{line}"/>'
        f'<circle cx="{xs[-1][:-1]}" cy="{ys[-1]}" r="20"/></svg>'
    )


def measure_state(
    measure: dict[str, Any], state: dict[str, Any] | None, *, name: bool = True, plan: bool = True
) -> str:
    """How one measure is doing: current value with unit, progress toward the target,
    a sparkline of its newest values and its verdict; the name links to its chart.
    ``name``/``plan``: whether to draw the name and the baseline → target (a table that
    has columns for them leaves them out). Called once per measure of a 10,000-node
    tree page, so it builds one string in one go."""
    return _measure_state(measure, state, name, plan, _Escaped())


def _measure_state(
    measure: dict[str, Any], state: dict[str, Any] | None, name: bool, plan: bool, esc: _Escaped
) -> str:
    unit = esc[measure.get("unit") or ""]
    state = state or {}
    title = _e(measure["name"])
    html = (
        f'<a class="measure__name" href="/dashboard/measures/{measure["id"]}/">{title}</a> '
        if name
        else ""
    )
    latest = state.get("latest_value")
    if latest is not None:
        html += f'<span class="measure__value">{format_number(latest)} {unit}</span> '
    progress = state.get("progress")
    if progress is not None:
        html += (
            f'<meter class="measure__progress" value="{progress:.2f}" aria-hidden="true"></meter>'
            f'<span class="measure__percent">{round(progress * 100)} %<span '
            'class="visually-hidden"> of the way to the target</span></span> '
        )
    points = state.get("points")
    if points:
        html += sparkline(points, label=f"Recent values of {title}")
    html += _badge(state.get("status"), state.get("label"), state.get("reason"), esc.badges)
    if plan:
        html += (
            f' <span class="measure__plan muted">{format_number(measure["baseline_value"])} &rarr; '
            f"{format_number(measure['target_value'])} {unit} by {measure['target_date']}</span>"
        )
    if name and measure.get("is_guardrail"):
        html += ' <span class="badge">guardrail</span>'
    return html


def _measures(
    measures: list[dict[str, Any]], states: dict[int, dict[str, Any]], esc: _Escaped
) -> str:
    if not measures:
        return ""
    items = "".join(
        [
            f'<li class="measure">{_measure_state(m, states.get(m["id"]), True, True, esc)}</li>'
            for m in measures
        ]
    )
    return f'<ul class="node__measures" aria-label="Measures">{items}</ul>'


_NO_VERDICT = ("", "No verdict yet")


def _verdict(
    verdicts: dict[int, tuple[str, str]] | None, node: dict[str, Any], badges: dict | None = None
) -> str:
    """A node's rolled-up verdict; a killed node has none (it left the active tree)."""
    if node.get("status") == "killed":
        return ""
    status, label = (verdicts or {}).get(node["id"], _NO_VERDICT)
    return _badge(status, label, "", badges)


def node_card(
    node: dict[str, Any],
    *,
    slug: str,
    can_edit: bool,
    verdicts: dict[int, tuple[str, str]] | None = None,
    states: dict[int, dict[str, Any]] | None = None,
) -> str:
    """The card of one node: what it is, who owns it, its rolled-up verdict, how each of
    its measures is doing, its actions."""
    esc = _Escaped()
    return _card(node, esc[slug], can_edit, verdicts or {}, states or {}, esc)


def _card(
    node: dict[str, Any],
    slug: str,
    can_edit: bool,
    verdicts: dict[int, tuple[str, str]],
    states: dict[int, dict[str, Any]],
    esc: _Escaped,
) -> str:
    """``node_card`` with ``slug`` already escaped and one drawing's memo ``esc``."""
    node_id = node["id"]
    kind = node["kind"]
    child_kind = CHILD_KIND[kind]
    raw_status = node["status"]
    status = esc[raw_status]
    meta = f'<span class="badge status status--{status}">{status}</span>'
    if node["owner"]:
        meta += f' <span class="node__owner">{esc[node["owner"]]}</span>'
    if node["confidence"] is not None:
        meta += f' <span class="node__confidence">{node["confidence"]}% confident</span>'
    actions = ""
    if can_edit:
        add = (
            f'<a href="/trees/{slug}/nodes/new/?parent={node_id}" '
            f'hx-get="/trees/{slug}/nodes/new/?parent={node_id}" hx-target="#dialog-body">'
            f"Add {child_kind}</a>"
            if child_kind
            else ""
        )
        # Killing or finishing a bet or an initiative is a decision: a small dialog asks
        # for the rationale. Goals take no decisions: their status is one click.
        if kind == NodeKind.GOAL:
            quick = "".join(
                [
                    f'<button type="button" class="link-button" '
                    f'hx-post="/nodes/{node_id}/status/" '
                    f'hx-vals=\'{{"status": "{new}"}}\' hx-swap="none">{label}</button>'
                    for new, label in (("done", "Mark done"), ("killed", "Kill"))
                    if raw_status != new
                ]
            )
        elif raw_status not in ("done", "killed"):
            quick = (
                f'<a href="/nodes/{node_id}/decide/?kind=done" '
                f'hx-get="/nodes/{node_id}/decide/?kind=done" '
                f'hx-target="#dialog-body">Mark done&hellip;</a>'
                f'<a href="/nodes/{node_id}/decide/?kind=kill" '
                f'hx-get="/nodes/{node_id}/decide/?kind=kill" '
                f'hx-target="#dialog-body">Kill&hellip;</a>'
            )
        else:
            quick = ""
        actions = (
            f'<span class="node__actions">{add}'
            f'<a href="/nodes/{node_id}/edit/" hx-get="/nodes/{node_id}/edit/" '
            f'hx-target="#dialog-body">Edit</a>'
            f'<a href="/nodes/{node_id}/move/" hx-get="/nodes/{node_id}/move/" '
            f'hx-target="#dialog-body">Move&hellip;</a>'
            f'<a href="/nodes/{node_id}/delete/" hx-get="/nodes/{node_id}/delete/" '
            f'hx-target="#dialog-body">Delete</a>{quick}</span>'
        )
    handle = (
        '<span class="node__handle" title="Drag to move" aria-hidden="true">&#10303;</span>'
        if can_edit
        else ""
    )
    return (
        f'<div class="node__card node__card--{status}" id="card-{node_id}">{handle}'
        f'<span class="node__kind">{KIND_LABELS[kind]}</span> '
        f'<a class="node__title" href="/nodes/{node_id}/">{_e(node["title"])}</a> '
        f'<span class="node__meta">{meta}</span> '
        f"{_verdict(verdicts, node, esc.badges)}"
        f"{_measures(node['measures'], states, esc)}{actions}</div>"
    )


def _node(
    parts: list[str],
    node: dict[str, Any],
    slug: str,
    can_edit: bool,
    verdicts: dict[int, tuple[str, str]],
    states: dict[int, dict[str, Any]],
    esc: _Escaped,
) -> None:
    """Append one node and its subtree to ``parts`` (``slug`` already escaped)."""
    node_id = node["id"]
    kind = node["kind"]
    parts.append(
        f'<li class="node node--{esc[kind]} node--{esc[node["status"]]}" id="node-{node_id}" '
        f'data-node-id="{node_id}" data-kind="{kind}">'
    )
    parts.append(_card(node, slug, can_edit, verdicts, states, esc))
    child_kind = CHILD_KIND[kind]
    if child_kind:
        children = node["children"]
        parts.append(
            f'<details class="node__children" open><summary>'
            f"{plural(len(children), child_kind, PLURALS[child_kind])}</summary>"
            f'<ul class="children" id="children-{node_id}" data-parent-id="{node_id}" '
            f'data-child-kind="{child_kind}">'
        )
        for child in children:
            _node(parts, child, slug, can_edit, verdicts, states, esc)
        parts.append("</ul></details>")
    parts.append("</li>")


def node_item(node: dict[str, Any], *, slug: str, can_edit: bool) -> SafeString:
    """One node and its subtree as an outline ``<li>`` (for an htmx fragment)."""
    parts: list[str] = []
    esc = _Escaped()
    _node(parts, node, esc[slug], can_edit, {}, {}, esc)
    return mark_safe("".join(parts))  # noqa: S308 — every user value is escaped above


def render_outline(
    document: dict[str, Any],
    *,
    can_edit: bool,
    verdicts: dict[int, tuple[str, str]] | None = None,
    states: dict[int, dict[str, Any]] | None = None,
) -> SafeString:
    """The whole tree as nested lists: goals, their bets, their initiatives."""
    slug = document["slug"]
    parts = [
        f'<ul class="outline children" id="children-root" data-parent-id="" '
        f'data-child-kind="goal" aria-label="Goals of {_e(document["name"])}">'
    ]
    esc = _Escaped()
    slug, verdicts, states = esc[slug], verdicts or {}, states or {}
    for goal in document["goals"]:
        _node(parts, goal, slug, can_edit, verdicts, states, esc)
    parts.append("</ul>")
    if not document["goals"]:
        parts.append('<p class="muted">This tree has no goals yet.</p>')
    return mark_safe("".join(parts))  # noqa: S308 — every user value is escaped above


# The legend of the diagram: the verdict statuses the badges draw (colours in
# static/css/valuetree.css, the same as outcomes/dashboard.py STATUS_COLOURS).
LEGEND = (
    ("achieved", "Achieved"),
    ("reached", "Reached, must hold"),
    ("on_track", "On track"),
    ("at_risk", "At risk"),
    ("off_track", "Off track"),
    ("missed", "Missed"),
    ("stale", "Stale"),
    ("too_early", "Too early to tell"),
    ("no_data", "No data"),
)


def _box_measures(node: dict[str, Any], states: dict[int, dict[str, Any]]) -> str:
    if not node.get("measures"):
        return ""
    # A killed node's measures no longer count: their dots are grey like the node
    # (a green "achieved" dot made killed work look alive), their values still shown.
    killed = node.get("status") == "killed"
    items = []
    for m in node["measures"]:
        state = states.get(m["id"]) or {}
        value = state.get("latest_value")
        shown = format_amount(value, m.get("unit")) if value is not None else "no value yet"
        status = "" if killed else state.get("status", "")
        items.append(
            f'<li><span class="verdict__dot" data-verdict="{_e(status)}" '
            f'aria-hidden="true"></span>{_e(m["name"])}: {_e(shown)}</li>'
        )
    return f'<ul class="box__measures">{"".join(items)}</ul>'


def _box(
    parts: list[str],
    node: dict[str, Any],
    verdicts: dict[int, tuple[str, str]],
    states: dict[int, dict[str, Any]],
) -> None:
    kind = node["kind"]
    node_id = node["id"]
    killed = node["status"] == "killed"
    state = " box--killed" if killed else ""
    extra = '<span class="box__status">Killed</span>' if killed else _verdict(verdicts, node)
    toggle = (
        f'<button type="button" class="box__toggle" aria-expanded="true" '
        f'aria-controls="kids-{node_id}" aria-label="Fold {_e(node["title"])}">−</button>'
        if node["children"]
        else ""
    )
    parts.append(
        f'<div class="branch" id="branch-{node_id}"><div class="box-wrap">'
        f'<a class="box box--{_e(kind)} status--{_e(node["status"])}{state}" '
        f'href="/nodes/{node_id}/"><span class="box__kind">{KIND_LABELS[kind]}</span>'
        f'<span class="box__title">{_e(node["title"])}</span>{extra}'
        f"{_box_measures(node, states)}</a>{toggle}</div>"
    )
    _kids(parts, node["children"], verdicts, states, parent_id=node_id)
    parts.append("</div>")


def _kids(
    parts: list[str],
    children: list[dict[str, Any]],
    verdicts: dict[int, tuple[str, str]],
    states: dict[int, dict[str, Any]],
    *,
    parent_id: int | None = None,
) -> None:
    """The column of boxes to the right of a parent."""
    if children:
        ident = f' id="kids-{parent_id}"' if parent_id else ""
        parts.append(f'<div class="kids"{ident}>')
        for child in children:
            _box(parts, child, verdicts, states)
        parts.append("</div>")


def render_diagram(
    document: dict[str, Any],
    *,
    verdicts: dict[int, tuple[str, str]] | None = None,
    states: dict[int, dict[str, Any]] | None = None,
) -> SafeString:
    """The tree drawn left to right: vision → goals → bets → initiatives, with
    connectors, each node's verdict (killed nodes greyed, without one), its measures'
    current values (shown or hidden by the page's toggle) and a legend."""
    legend = "".join(f"<li>{verdict_badge(status, label)}</li>" for status, label in LEGEND)
    parts = [
        f'<ul class="legend" aria-label="Verdict colours">{legend}'
        '<li><span class="box__status">Killed</span></li></ul>'
        '<div class="diagram" id="diagram"><div class="diagram__canvas">'
        '<div class="branch"><div class="box-wrap"><div class="box box--vision">'
        f'<span class="box__kind">Vision</span><span class="box__title">'
        f"{_e(document['vision'])}</span></div></div>"
    ]
    _kids(parts, document["goals"], verdicts or {}, states or {})
    parts.append("</div></div></div>")
    return mark_safe("".join(parts))  # noqa: S308 — every user value is escaped above
