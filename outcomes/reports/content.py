"""What a report says, as plain data every channel renders (e-mail, PDF, Slack, Teams).

Built from ``review_data`` (outcomes/reviews/selectors.py) of a published review: the
headline (now and at the previous review), the changes ("what changed since last
time" comes first, as readers ask), the decisions, the learnings, and a link.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from outcomes.reviews.export import STATUS_WORDS
from outcomes.reviews.snapshot import headline_words
from valuetree.outline import format_figure


def _words(status: str | None) -> str:
    return STATUS_WORDS.get(status or "", status or "—")


def change_lines(changes: dict[str, Any]) -> list[str]:
    """One plain sentence per change, the most telling kinds first (status moves of
    measures and nodes, then kills, completions, additions, removals, moves, edits,
    metric health)."""
    lines = [
        f"Measure {m['name']} ({m['node_title']}): {_words(m['from'])} → {_words(m['to'])}"
        for m in changes.get("measure_moves", [])
    ]
    lines += [
        f"{m['kind'].capitalize()} {m['title']}: {_words(m['from'])} → {_words(m['to'])}"
        for m in changes.get("node_moves", [])
    ]
    for key, verb in (("killed", "killed"), ("done", "done"), ("added", "added")):
        lines += [f"{n['kind'].capitalize()} {n['title']} {verb}" for n in changes.get(key, [])]
    lines += [f"{n['kind'].capitalize()} {n['title']} deleted" for n in changes.get("removed", [])]
    lines += [
        f"{n['title']} moved from {n['from_parent_title']} to {n['to_parent_title']}"
        for n in changes.get("moved", [])
    ]
    lines += [
        f"{e['name']}: {e['field'].replace('_', ' ')} {format_figure(e['from'])} → "
        f"{format_figure(e['to'])}"
        for e in changes.get("edits", [])
    ]
    lines += [f"Metric {m['name']} {m['change']}" for m in changes.get("metrics", [])]
    return lines


_PLURAL = {"goal": "Goals", "bet": "Bets", "initiative": "Initiatives"}


def _plural(kind: str) -> str:
    return _PLURAL.get(kind, f"{kind.capitalize()}s")


def change_groups(changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The same changes as ``change_lines``, in the same order, grouped by what they
    share: ``[{"heading", "items"}]``, e.g. ``{"heading": "Measures: no data → on
    track", "items": ["Churn (Initiative A)", …]}``. Every change is one item of one
    group (``sum(len(g["items"])) == len(change_lines(changes))``): the printed report
    lists them all without repeating the shared words on every line."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}

    def add(key: tuple[str, ...], heading: str, item: str) -> None:
        groups.setdefault(key, {"heading": heading, "items": []})["items"].append(item)

    for m in changes.get("measure_moves", []):
        fro, to = _words(m["from"]), _words(m["to"])
        add(("m", fro, to), f"Measures: {fro} → {to}", f"{m['name']} ({m['node_title']})")
    for m in changes.get("node_moves", []):
        fro, to = _words(m["from"]), _words(m["to"])
        add(("n", m["kind"], fro, to), f"{_plural(m['kind'])}: {fro} → {to}", m["title"])
    for key, verb in (("killed", "killed"), ("done", "done"), ("added", "added")):
        for n in changes.get(key, []):
            add((key, n["kind"]), f"{_plural(n['kind'])} {verb}", n["title"])
    for n in changes.get("removed", []):
        add(("removed", n["kind"]), f"{_plural(n['kind'])} deleted", n["title"])
    for n in changes.get("moved", []):
        add(("moved",), "Moved", f"{n['title']}: {n['from_parent_title']} → {n['to_parent_title']}")
    for e in changes.get("edits", []):
        add(
            ("edits",),
            "Baseline and target edits",
            f"{e['name']}: {e['field'].replace('_', ' ')} {format_figure(e['from'])} → "
            f"{format_figure(e['to'])}",
        )
    for m in changes.get("metrics", []):
        add(("metrics", m["change"]), f"Metrics {m['change']}", m["name"])
    return list(groups.values())


def review_url(review_id: int) -> str:
    """The review page's absolute address (SITE_URL + path)."""
    return settings.SITE_URL + reverse("outcomes:review", kwargs={"review_id": review_id})


def report_content(data: dict[str, Any]) -> dict[str, Any]:
    """The report of a review as plain data.

    Keys: ``title``, ``tree`` (name), ``tree_slug``, ``as_of`` (aware datetime),
    ``url``, ``headline`` (rows ``{"status", "label", "now", "before"}``; ``before`` is
    None without a previous review), ``value`` (expected/realised/investment: one figure each, None when the goals'
    amounts are in several units), ``value_words`` (the same in words, per unit:
    ``snapshot.headline_words``),
    ``changes`` (sentences), ``change_groups`` (the same, grouped:
    ``change_groups``), ``changes_count``, ``decisions`` (``{"kind", "node",
    "rationale", "by"}``), ``needed`` (titles, for a draft), ``learnings`` (``{"kind",
    "text"}``), ``previous_title``, ``nodes`` (the tree as it stood: ``{"depth",
    "kind", "title", "status", "outcome"}``).
    """
    review = data["review"]
    snapshot = data["snapshot"]
    head = snapshot["headline"]
    before = (data["previous"] or {}).get("headline") or {}
    rows = [
        {
            "status": status,
            "label": label,
            "now": head["outcomes_by_status"].get(status, 0),
            "before": before.get("outcomes_by_status", {}).get(status, 0)
            if data["previous"]
            else None,
        }
        for status, label in STATUS_WORDS.items()
    ]
    depth = {"goal": 0, "bet": 1, "initiative": 2}
    return {
        "title": review.title,
        "tree": data["tree"].name,
        "tree_slug": data["tree"].slug,
        "as_of": data["as_of"],
        "url": review_url(review.pk),
        "headline": rows,
        "value_words": headline_words(head),
        "value": {
            "expected": head.get("expected_value"),
            "realised": head.get("realised_value"),
            "investment": head.get("investment"),
        },
        "changes": change_lines(data["changes"]),
        "change_groups": change_groups(data["changes"]),
        "changes_count": data["changes_count"],
        "decisions": [
            {
                "kind": d.kind,
                "node": d.node_title,
                "rationale": d.rationale,
                "by": d.by.get_username() if d.by else "",
            }
            for d in data["decisions"]
        ],
        "needed": [item["node"]["title"] for item in data.get("needed", [])],
        "learnings": [{"kind": row.kind, "text": row.text} for row in data["learnings"]],
        "previous_title": (data["previous"] or {}).get("title"),
        "nodes": [
            {
                "depth": depth.get(n["kind"], 0),
                "kind": n["kind"],
                "title": n["title"],
                "status": n["status"],
                "outcome": _words((n.get("outcome") or {}).get("status")),
            }
            for n in snapshot["nodes"]
        ],
        "node_count": len(snapshot["nodes"]),
        "measure_count": len(snapshot["measures"]),
    }
