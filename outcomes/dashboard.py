"""The leadership outcome dashboard: selectors and Plotly figures, built on the server.

Figures are plain dicts (``{"data", "layout", "config"}``) handed to the vendored
plotly.js by ``static/js/charts.js``; the Plotly Python package is not used. Everything
is read with ``values()`` in a fixed number of queries, whatever the portfolio's size:

1. the readable trees (``trees_for_user``), 2. domains for the filter, 3. nodes (with a
"linked to the chosen domain" flag), 4. measures with their current verdict's status,
5–7. ``tree_outcomes`` (nodes, measures, current verdicts) for the roll-ups. With the
session and the user that is nine queries per page.

Size: every figure stays well under 200 kB for a 10,000-node portfolio because the
figures that would grow with the portfolio are capped:

* the sunburst adds levels (trees, goals, bets, initiatives) breadth-first while the
  total stays within ``SUNBURST_MAX_SEGMENTS``; a level that does not fit whole is
  left out, so a large portfolio shows goals and bets (a bet's colour is its rolled-up
  status, which already includes its initiatives) and the hover text says how many
  nodes below are not drawn;
* bubbles are bets (not initiatives), the ``BUBBLE_MAX_POINTS`` largest by investment;
* goal bars are the ``GOAL_MAX_BARS`` goals with the largest expected value, the rest
  summed into one "Other goals" bar;
* labels are cut to ``LABEL_MAX_CHARS``.

Filters (GET): ``tree`` (one readable tree), ``domain`` (keep the nodes linked to a
data product of that domain, with their ancestors and descendants) and ``period``
(keep the measures whose target date falls in it, and the nodes that carry such a
measure, with their ancestors and descendants). Node figures show each kept node's
rolled-up outcome over all its measures.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from outcomes.models import Measure, Observation, Verdict, VerdictStatus
from outcomes.selectors import NodeOutcome, tree_outcomes
from valuetree.models import DataProductLink, Domain, Node, NodeStatus
from valuetree.selectors import nodes_below, trees_for_user

# One colour per verdict status, used by every figure here and by the tree editor's
# verdict slot (a node's rolled-up status). Colour-blind-safe enough: the two greens
# differ in lightness and every status is also named in hover text and tables.
STATUS_COLOURS: dict[str, str] = {
    VerdictStatus.ACHIEVED: "#1b7837",
    VerdictStatus.REACHED: "#3a9348",
    VerdictStatus.ON_TRACK: "#5aae61",
    VerdictStatus.AT_RISK: "#f1a340",
    VerdictStatus.OFF_TRACK: "#d6604d",
    VerdictStatus.MISSED: "#8e0152",
    VerdictStatus.TOO_EARLY: "#d9d9d9",
    VerdictStatus.NO_DATA: "#bababa",
    VerdictStatus.STALE: "#8073ac",
}
STATUS_LABELS: dict[str, str] = dict(VerdictStatus.choices)
# Worst first: the order of the "needs attention" list.
ATTENTION_ORDER = ("missed", "off_track", "at_risk", "stale")
TREE_COLOUR = "#ffffff"

SUNBURST_MAX_SEGMENTS = 1500
BUBBLE_MAX_POINTS = 500
GOAL_MAX_BARS = 30
ATTENTION_MAX_ROWS = 25
LABEL_MAX_CHARS = 40
BUBBLE_MAX_LABELS = 30
BUBBLE_LABEL_CHARS = 24
SUNBURST_LABEL_CHARS = 22
MEASURE_MAX_OBSERVATIONS = 2000

CONFIG = {"displaylogo": False, "responsive": True}


def status_colour(status: str | None) -> str:
    """The colour of a status (no verdict yet counts as ``no_data``)."""
    return STATUS_COLOURS.get(status or VerdictStatus.NO_DATA, STATUS_COLOURS["no_data"])


# --- Filters ---------------------------------------------------------------------------

PERIODS: dict[str, str] = {
    "": "Any target date",
    "overdue": "Target date passed",
    "next-90": "Due in the next 90 days",
    "this-year": "Due this year",
    "next-year": "Due next year",
}


def period_range(period: str, today: date) -> tuple[date | None, date | None]:
    """The target dates (inclusive) a period keeps; (None, None) keeps them all."""
    if period == "overdue":
        return None, today - timedelta(days=1)
    if period == "next-90":
        return today, today + timedelta(days=90)
    if period == "this-year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    if period == "next-year":
        return date(today.year + 1, 1, 1), date(today.year + 1, 12, 31)
    return None, None


@dataclass
class DashboardFilters:
    tree_id: int | None = None
    domain_id: int | None = None
    period: str = ""
    errors: list[str] = field(default_factory=list)


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def filters_from(
    params: Any, *, tree_ids: Iterable[int], domain_ids: Iterable[int]
) -> DashboardFilters:
    """Filters from GET parameters; a value that names nothing readable is dropped with
    a message instead of failing the page."""
    filters = DashboardFilters()
    tree_id = _int_or_none(params.get("tree"))
    if tree_id is not None and tree_id in set(tree_ids):
        filters.tree_id = tree_id
    elif params.get("tree"):
        filters.errors.append("That tree does not exist or you may not read it; showing all trees.")
    domain_id = _int_or_none(params.get("domain"))
    if domain_id is not None and domain_id in set(domain_ids):
        filters.domain_id = domain_id
    elif params.get("domain"):
        filters.errors.append("That domain does not exist; showing every domain.")
    period = params.get("period") or ""
    if period in PERIODS:
        filters.period = period
    else:
        filters.errors.append("Unknown period; showing any target date.")
    return filters


# --- Selector --------------------------------------------------------------------------


@dataclass
class Portfolio:
    """What the dashboard draws: rows as dicts, keyed by id."""

    trees: list[dict[str, Any]]  # every readable tree (for the filter form)
    domains: list[dict[str, Any]]
    shown_tree_ids: list[int]
    nodes: dict[int, dict[str, Any]]  # kept nodes only
    hidden_children: dict[int, int]  # node id -> children not kept by the filters
    measures: list[dict[str, Any]]  # kept measures, with "status"
    outcomes: dict[int, NodeOutcome]
    filters: DashboardFilters


def dashboard_portfolio(*, user: Any, params: Any, today: date | None = None) -> Portfolio:
    today = today or timezone.localdate()
    trees = list(trees_for_user(user).order_by("name", "id").values("id", "name", "slug"))
    domains = list(Domain.objects.order_by("name").values("id", "name"))
    filters = filters_from(
        params, tree_ids=[t["id"] for t in trees], domain_ids=[d["id"] for d in domains]
    )
    shown = [filters.tree_id] if filters.tree_id else [t["id"] for t in trees]

    node_rows = Node.objects.filter(tree_id__in=shown).order_by("tree_id", "position", "id")
    columns = ["id", "tree_id", "parent_id", "kind", "title", "status"]
    if filters.domain_id:
        node_rows = node_rows.annotate(
            linked=Exists(
                DataProductLink.objects.filter(
                    node=OuterRef("pk"), data_product__domain_id=filters.domain_id
                )
            )
        )
        columns.append("linked")
    nodes = {row["id"]: row for row in node_rows.values(*columns)}
    # Killed work left the tree's outcomes (the roll-up leaves it out): it is not asked
    # about, counted or drawn here either, nor the work under it.
    rows = list(nodes.values())
    gone = nodes_below(rows, (NodeStatus.KILLED,)) | {
        row["id"] for row in rows if row["status"] == NodeStatus.KILLED
    }
    nodes = {node_id: row for node_id, row in nodes.items() if node_id not in gone}

    current = Verdict.objects.filter(measure=OuterRef("pk"), is_current=True)
    measure_rows = Measure.objects.filter(node__tree_id__in=shown).order_by(
        "node_id", "position", "id"
    )
    start, end = period_range(filters.period, today)
    if start:
        measure_rows = measure_rows.filter(target_date__gte=start)
    if end:
        measure_rows = measure_rows.filter(target_date__lte=end)
    measures = list(
        measure_rows.annotate(
            status=Subquery(current.values("status")[:1]),
            reason=Subquery(current.values("reason")[:1]),
        ).values("id", "node_id", "name", "unit", "target_date", "status", "reason")
    )
    for measure in measures:
        measure["status"] = measure["status"] or VerdictStatus.NO_DATA

    matches: list[set[int]] = []
    if filters.domain_id:
        matches.append({node_id for node_id, row in nodes.items() if row["linked"]})
    if filters.period:
        matches.append({measure["node_id"] for measure in measures})
    kept = set(nodes)
    for matched in matches:
        kept &= _with_kin(nodes, matched)
    measures = [m for m in measures if m["node_id"] in kept]

    hidden: Counter[int] = Counter(
        row["parent_id"]
        for node_id, row in nodes.items()
        if node_id not in kept and row["parent_id"]
    )
    return Portfolio(
        trees=trees,
        domains=domains,
        shown_tree_ids=shown,
        nodes={node_id: nodes[node_id] for node_id in nodes if node_id in kept},
        hidden_children=dict(hidden),
        measures=measures,
        outcomes=tree_outcomes(shown) if shown else {},
        filters=filters,
    )


def _with_kin(nodes: dict[int, dict[str, Any]], matched: set[int]) -> set[int]:
    """The matched nodes with their ancestors and descendants."""
    kept = set()
    for node_id in matched:
        current: int | None = node_id
        while current is not None and current not in kept:
            kept.add(current)
            current = nodes[current]["parent_id"]
    children: dict[int, list[int]] = defaultdict(list)
    for node_id, row in nodes.items():
        if row["parent_id"]:
            children[row["parent_id"]].append(node_id)
    stack = list(matched)
    visited: set[int] = set()
    while stack:
        node_id = stack.pop()
        if node_id in visited:
            continue
        visited.add(node_id)
        kept.update(children[node_id])
        stack.extend(children[node_id])
    return kept


def attention_rows(portfolio: Portfolio) -> list[dict[str, Any]]:
    """The worst measures first (missed, off track, at risk, stale), capped."""
    rank = {status: index for index, status in enumerate(ATTENTION_ORDER)}
    rows = [m for m in portfolio.measures if m["status"] in rank]
    rows.sort(key=lambda m: (rank[m["status"]], m["target_date"], m["id"]))
    for row in rows:
        node = portfolio.nodes.get(row["node_id"])
        row["node_title"] = node["title"] if node else ""
        row["status_label"] = STATUS_LABELS[row["status"]]
        row["colour"] = STATUS_COLOURS[row["status"]]
    return rows[:ATTENTION_MAX_ROWS]


# --- Figures ---------------------------------------------------------------------------


def plotly_text(text: str) -> str:
    """User text for a Plotly label, which draws some HTML tags: <, > and & escaped.

    Quotes stay as they are: Plotly decodes only a few named entities (&amp; &lt; &gt;,
    not &quot;), so an escaped quote would be drawn as "&quot;", and a quote cannot end
    anything in a label (Plotly sets text, not markup attributes).
    """
    return html.escape(text, quote=False)


def _label(text: str, limit: int = LABEL_MAX_CHARS) -> str:
    """User text for Plotly: escaped (plotly_text) and cut (at a word boundary when one
    is in the second half)."""
    if len(text) > limit:
        cut = text[: limit - 1]
        space = cut.rfind(" ")
        if space > limit // 2:
            cut = cut[:space]
        text = cut.rstrip(" —-·,") + "…"
    return plotly_text(text)


def _layout(**extra: Any) -> dict[str, Any]:
    return {"margin": {"t": 24, "r": 16, "b": 56, "l": 64}, "height": 360, **extra}


def status_counts(portfolio: Portfolio) -> dict[str, int]:
    counts = Counter(m["status"] for m in portfolio.measures)
    return {status: counts.get(status, 0) for status in STATUS_COLOURS}


def _count_axis(largest: int, title: str) -> dict[str, Any]:
    """A y axis of whole counts: no 0.2, 0.4 ticks on a small portfolio."""
    axis: dict[str, Any] = {"title": {"text": title}, "rangemode": "tozero", "tickformat": ",d"}
    if largest <= 10:
        axis["dtick"] = 1
    return axis


def status_counts_figure(portfolio: Portfolio) -> dict[str, Any]:
    counts = status_counts(portfolio)
    return {
        "data": [
            {
                "type": "bar",
                "name": "Measures",
                "x": [STATUS_LABELS[s] for s in counts],
                "y": list(counts.values()),
                "marker": {"color": [STATUS_COLOURS[s] for s in counts]},
                "hovertemplate": "%{x}: %{y} measures<extra></extra>",
            }
        ],
        "layout": _layout(
            showlegend=False, yaxis=_count_axis(max(counts.values(), default=0), "Measures")
        ),
        "config": CONFIG,
    }


def goal_values(portfolio: Portfolio) -> list[dict[str, Any]]:
    """Expected and realised value per goal and unit, largest expected first; amounts
    in different units are separate rows, never added. Beyond ``GOAL_MAX_BARS`` rows,
    the rest are summed per unit into "Other goals". Each row: ``id``, ``title`` (the
    goal's name), ``tree`` (its tree's name), ``unit``, ``status``, ``colour``,
    ``expected``, ``realised``."""
    tree_names = {t["id"]: t["name"] for t in portfolio.trees}
    rows = []
    for node_id, node in portfolio.nodes.items():
        if node["kind"] != "goal":
            continue
        outcome = portfolio.outcomes.get(node_id)
        status = outcome.status if outcome else VerdictStatus.NO_DATA
        by_unit = dict(outcome.expected_by_unit) if outcome else {}
        realised = outcome.realised_by_unit if outcome else {}
        for unit in by_unit or {"": 0.0}:
            rows.append(
                {
                    "id": node_id,
                    "title": node["title"],
                    "tree": tree_names.get(node["tree_id"], ""),
                    "unit": unit,
                    "colour": status_colour(status),
                    "status": status,
                    "status_label": STATUS_LABELS.get(status, status),
                    "expected": by_unit.get(unit, 0.0),
                    "realised": realised.get(unit, 0.0),
                }
            )
    rows.sort(key=lambda row: (-row["expected"], row["id"], row["unit"]))
    if len(rows) > GOAL_MAX_BARS:
        rest = rows[GOAL_MAX_BARS - 1 :]
        rows = rows[: GOAL_MAX_BARS - 1]
        for unit in sorted({r["unit"] for r in rest}):
            same = [r for r in rest if r["unit"] == unit]
            rows.append(
                {
                    "id": None,
                    "title": f"Other goals ({len(same)})",
                    "tree": "",
                    "unit": unit,
                    "status": VerdictStatus.NO_DATA,
                    "status_label": STATUS_LABELS[VerdictStatus.NO_DATA],
                    "colour": STATUS_COLOURS[VerdictStatus.NO_DATA],
                    "expected": sum(r["expected"] for r in same),
                    "realised": sum(r["realised"] for r in same),
                }
            )
    return rows


def bet_rows(portfolio: Portfolio) -> list[dict[str, Any]]:
    """Every kept bet with its verdict and amounts in words ("60,000 EUR", per unit
    when its initiatives use several): the bubble chart's table alternative."""
    from valuetree.outline import format_amount

    def words(by_unit: dict[str, float]) -> str:
        return "; ".join(format_amount(v, u) for u, v in sorted(by_unit.items())) or "—"

    rows = []
    for node_id, node in portfolio.nodes.items():
        outcome = portfolio.outcomes.get(node_id)
        if node["kind"] != "bet" or outcome is None:
            continue
        rows.append(
            {
                "id": node_id,
                "title": node["title"],
                "status": outcome.status,
                "status_label": STATUS_LABELS.get(outcome.status, outcome.status),
                "investment": words(outcome.investment_by_unit),
                "expected": words(outcome.expected_by_unit),
                "realised": words(outcome.realised_by_unit),
            }
        )
    return rows[:BUBBLE_MAX_POINTS]


def main_unit(units: Iterable[str]) -> str:
    """The unit most rows are in (ties: the first in sorting order): the one a figure
    with a single value axis draws; the others are in the figure's table."""
    counts = Counter(units)
    if not counts:
        return ""
    return min(counts, key=lambda unit: (-counts[unit], unit))


def goal_value_figure(portfolio: Portfolio) -> dict[str, Any]:
    """Bars of the goals valued in the main unit, labelled by the goal's name (the tree's
    name and the full title in the hover text)."""
    every = goal_values(portfolio)
    unit = main_unit(r["unit"] for r in every if r["expected"])
    rows = [r for r in every if r["unit"] == unit]
    # Plotly merges equal category labels: equal names get their tree's name, then a number.
    seen: Counter[str] = Counter(_label(row["title"]) for row in rows)
    labels, used = [], Counter()
    for row in rows:
        label = _label(row["title"])
        if seen[label] > 1:
            label = _label(f"{row['title']} ({row['tree']})")
        used[label] += 1
        labels.append(label if used[label] == 1 else f"{label} {used[label]}")
    hover = [_label(f"{row['tree']} › {row['title']}") for row in rows]
    suffix = f" ({html.escape(unit)})" if unit else ""
    return {
        "data": [
            {
                "type": "bar",
                "name": f"Expected value{suffix}",
                "x": labels,
                "y": [row["expected"] for row in rows],
                "customdata": hover,
                "hovertemplate": "%{customdata}<br>Expected %{y:,}" + suffix + "<extra></extra>",
                "marker": {"color": "#9ecae1"},
            },
            {
                "type": "bar",
                "name": f"Realised value{suffix}",
                "x": labels,
                "y": [row["realised"] for row in rows],
                "customdata": hover,
                "hovertemplate": "%{customdata}<br>Realised %{y:,}" + suffix + "<extra></extra>",
                "marker": {"color": [status_colour(row["status"]) for row in rows]},
            },
        ],
        "layout": _layout(
            barmode="group",
            yaxis={"title": {"text": f"Value{suffix}"}, "tickformat": ",~r"},
            xaxis={"automargin": True, "tickangle": -30},
        ),
        "config": CONFIG,
    }


def investment_bubble_figure(portfolio: Portfolio) -> dict[str, Any]:
    """Bets: investment (x) against expected value (y), labelled by the bet's name;
    the bubble's area is realised value; one trace per status so the legend names the
    colours. Only bets in the main pair of units are drawn: EUR and person-weeks
    never share an axis."""
    bets = []
    for node_id, node in portfolio.nodes.items():
        outcome = portfolio.outcomes.get(node_id)
        if node["kind"] != "bet" or outcome is None:
            continue
        if outcome.investment is None or outcome.expected_value is None:
            continue
        bets.append((node, outcome))
    pairs = Counter((o.investment_unit or "", o.value_unit or "") for _, o in bets)
    money, value = min(pairs, key=lambda p: (-pairs[p], p)) if pairs else ("", "")
    bets = [
        (n, o) for n, o in bets if (o.investment_unit or "", o.value_unit or "") == (money, value)
    ]
    bets.sort(key=lambda pair: (-(pair[1].investment or 0), pair[0]["id"]))
    bets = bets[:BUBBLE_MAX_POINTS]
    largest = max((o.realised_value or 0 for _, o in bets), default=0) or 1
    by_status: dict[str, list[tuple[dict[str, Any], NodeOutcome]]] = defaultdict(list)
    for node, outcome in bets:
        by_status[outcome.status].append((node, outcome))
    # Names on the bubbles while they stay readable; beyond, in the hover text only.
    mode = "markers+text" if len(bets) <= BUBBLE_MAX_LABELS else "markers"
    data = []
    for status in STATUS_COLOURS:
        points = by_status.get(status)
        if not points:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": mode,
                "name": STATUS_LABELS[status],
                "x": [round(o.investment, 2) for _, o in points],
                "y": [round(o.expected_value, 2) for _, o in points],
                "text": [_label(n["title"], BUBBLE_LABEL_CHARS) for n, _ in points],
                "hovertext": [_label(n["title"]) for n, _ in points],
                "textposition": "top center",
                "textfont": {"size": 11},
                "cliponaxis": False,
                "customdata": [round(o.realised_value or 0, 2) for _, o in points],
                "marker": {
                    "color": STATUS_COLOURS[status],
                    "size": [
                        round(8 + 32 * ((o.realised_value or 0) / largest) ** 0.5, 1)
                        for _, o in points
                    ],
                    "line": {"width": 1, "color": "#333"},
                    "opacity": 0.8,
                },
                "hovertemplate": "%{hovertext}<br>Investment %{x:,}<br>Expected %{y:,}"
                "<br>Realised %{customdata:,}<extra>" + STATUS_LABELS[status] + "</extra>",
            }
        )
    money_suffix = f" ({html.escape(money)})" if money else ""
    value_suffix = f" ({html.escape(value)})" if value else ""
    return {
        "data": data,
        "layout": _layout(
            xaxis={"title": {"text": f"Investment{money_suffix}"}, "rangemode": "tozero"},
            yaxis={"title": {"text": f"Expected value{value_suffix}"}, "rangemode": "tozero"},
            legend={"title": {"text": "Verdict"}},
        ),
        "config": CONFIG,
    }


def sunburst_rows(portfolio: Portfolio) -> list[dict[str, Any]]:
    """Segments for the sunburst: tree roots, then whole levels while they fit."""
    tree_names = {t["id"]: t["name"] for t in portfolio.trees}
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in portfolio.nodes.values():
        by_kind[node["kind"]].append(node)
    tree_ids = sorted(
        {n["tree_id"] for n in portfolio.nodes.values()}, key=lambda t: tree_names.get(t, "")
    )
    rows: list[dict[str, Any]] = []
    for tree_id in tree_ids:
        rows.append(
            {
                "id": f"t{tree_id}",
                "parent": "",
                "label": tree_names.get(tree_id, ""),
                "status": None,
                "hidden": 0,
            }
        )
    kinds = ("goal", "bet", "initiative")
    included: list[str] = []
    for kind in kinds:
        if len(rows) + len(by_kind[kind]) > SUNBURST_MAX_SEGMENTS:
            break
        included.append(kind)
        for node in by_kind[kind]:
            outcome = portfolio.outcomes.get(node["id"])
            rows.append(
                {
                    "id": f"n{node['id']}",
                    "parent": f"n{node['parent_id']}"
                    if node["parent_id"]
                    else f"t{node['tree_id']}",
                    "label": node["title"],
                    "status": outcome.status if outcome else VerdictStatus.NO_DATA,
                    "hidden": portfolio.hidden_children.get(node["id"], 0),
                    "kind": kind,
                }
            )
    # Children of the last level drawn are not shown: count them for the hover text.
    child_count: Counter[int] = Counter(
        n["parent_id"]
        for n in portfolio.nodes.values()
        if n["kind"] not in included and n["parent_id"]
    )
    for row in rows:
        if row["id"].startswith("n"):
            row["hidden"] += child_count.get(int(row["id"][1:]), 0)
    return rows


def sunburst_figure(portfolio: Portfolio) -> dict[str, Any]:
    rows = sunburst_rows(portfolio)
    return {
        "data": [
            {
                "type": "sunburst",
                "ids": [r["id"] for r in rows],
                "parents": [r["parent"] for r in rows],
                # Short labels drawn level; the full name is in the hover text.
                "labels": [_label(r["label"]) for r in rows],
                "text": [_label(r["label"], SUNBURST_LABEL_CHARS) for r in rows],
                "texttemplate": "%{text}",
                "textfont": {"size": 12},
                "marker": {
                    "colors": [
                        TREE_COLOUR if r["status"] is None else STATUS_COLOURS[r["status"]]
                        for r in rows
                    ],
                    "line": {"color": "#fff", "width": 1},
                },
                "customdata": [
                    [
                        STATUS_LABELS[r["status"]] if r["status"] else "Tree",
                        f"{r['hidden']} below not drawn" if r["hidden"] else "",
                    ]
                    for r in rows
                ],
                "hovertemplate": "%{label}<br>%{customdata[0]}<br>%{customdata[1]}<extra></extra>",
                "maxdepth": 3,
                "insidetextorientation": "horizontal",
            }
        ],
        "layout": {"margin": {"t": 8, "r": 8, "b": 8, "l": 8}, "height": 520},
        "config": CONFIG,
    }


def dashboard_figures(portfolio: Portfolio) -> dict[str, dict[str, Any]]:
    return {
        "status_counts": status_counts_figure(portfolio),
        "goal_values": goal_value_figure(portfolio),
        "bubbles": investment_bubble_figure(portfolio),
        "sunburst": sunburst_figure(portfolio),
    }


# --- One measure -----------------------------------------------------------------------


def decision_markers(measure: Measure) -> list[dict[str, Any]]:
    """Decisions taken on the measure's node and its parent, as chart markers:
    ``[{"date", "label", "kind"}]``, oldest first. From the Decision records (status
    changes made before decisions existed are history, not decisions). One query.
    """
    from outcomes.reviews.models import Decision

    node = measure.node
    rows = (
        Decision.objects.filter(node_id__in=[node.pk, node.parent_id])
        .order_by("at", "id")
        .values("node_title", "kind", "at")
    )
    return [
        {
            "date": row["at"],
            "label": f"{row['node_title'][:40]}: {row['kind']}",
            "kind": row["kind"],
        }
        for row in rows
    ]


def measure_detail(measure: Measure) -> dict[str, Any]:
    """The evidence of one measure: its newest observations and its current verdict."""
    points: list[tuple[Any, float]] = []
    if measure.metric_id:
        newest = (
            Observation.objects.filter(metric_id=measure.metric_id)
            .order_by("-period_start")
            .values_list("period_start", "value")[:MEASURE_MAX_OBSERVATIONS]
        )
        points = list(newest)[::-1]
    verdict = (
        Verdict.objects.filter(measure=measure, is_current=True)
        .values(
            "status",
            "progress",
            "expected_progress",
            "latest_value",
            "latest_period",
            "forecast_value",
            "forecast_low",
            "forecast_high",
            "forecast_probability",
            "forecast_note",
            "forecast_model",
            "plan_status",
            "reason",
            "as_of",
        )
        .first()
    )
    return {"points": points, "verdict": verdict, "decisions": decision_markers(measure)}


def measure_figure(measure: Measure, detail: dict[str, Any]) -> dict[str, Any]:
    """Planned trajectory, observations, forecast band and decisions of one measure."""
    unit = plotly_text(measure.unit)
    baseline_day = measure.baseline_date.isoformat()
    target_day = measure.target_date.isoformat()
    verdict = detail["verdict"]
    points = detail["points"]
    status = verdict["status"] if verdict else VerdictStatus.NO_DATA
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Planned trajectory",
            "x": [baseline_day, target_day],
            "y": [measure.baseline_value, measure.target_value],
            "line": {"dash": "dash", "color": "#555"},
            "marker": {"symbol": ["circle", "star"], "size": [8, 14]},
            "text": ["Baseline", "Target"],
            "hovertemplate": "%{text}: %{y} " + unit + "<br>%{x}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Observations",
            "x": [start.strftime("%Y-%m-%d %H:%M:%S") for start, _ in points],
            "y": [value for _, value in points],
            "line": {"color": status_colour(status)},
            "hovertemplate": "%{y} " + unit + "<br>%{x}<extra></extra>",
        },
    ]
    if verdict and verdict["forecast_low"] is not None and verdict["forecast_high"] is not None:
        origin_x = (verdict["latest_period"] or timezone.now()).strftime("%Y-%m-%d %H:%M:%S")
        origin_y = (
            verdict["latest_value"]
            if verdict["latest_value"] is not None
            else verdict["forecast_value"]
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Forecast band (80 %)",
                "x": [origin_x, target_day, target_day, origin_x],
                "y": [origin_y, verdict["forecast_high"], verdict["forecast_low"], origin_y],
                "fill": "toself",
                "fillcolor": "rgba(128, 115, 172, 0.2)",
                "line": {"width": 0},
                "hoverinfo": "skip",
            }
        )
        if verdict["forecast_value"] is not None:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "Forecast",
                    "x": [origin_x, target_day],
                    "y": [origin_y, verdict["forecast_value"]],
                    "line": {"dash": "dot", "color": "#8073ac"},
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [0, verdict["forecast_high"] - verdict["forecast_value"]],
                        "arrayminus": [0, verdict["forecast_value"] - verdict["forecast_low"]],
                    },
                    "hovertemplate": "Forecast %{y} " + unit + "<br>%{x}<extra></extra>",
                }
            )
    shapes = []
    annotations = []
    for decision in detail["decisions"]:
        day = decision["date"].isoformat()
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": day,
                "x1": day,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#333", "dash": "dot", "width": 1},
            }
        )
        annotations.append(
            {
                "x": day,
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "text": _label(decision["label"]),
                "showarrow": False,
            }
        )
    return {
        "data": data,
        "layout": _layout(
            xaxis={"type": "date", "title": {"text": "Date"}},
            yaxis={"title": {"text": unit or "Value"}},
            shapes=shapes,
            annotations=annotations,
            legend={"orientation": "h", "y": -0.25},
            height=420,
        ),
        "config": CONFIG,
    }


def measure_for_user(user: Any, measure_id: int) -> Measure | None:
    """A measure in a tree the user may read, with its node and tree, or None."""
    return (
        Measure.objects.filter(Q(pk=measure_id), node__tree__in=trees_for_user(user).values("pk"))
        .select_related("node", "node__tree", "metric")
        .first()
    )
