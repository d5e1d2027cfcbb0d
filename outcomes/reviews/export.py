"""A review as plain JSON-ready data and as Markdown (the API, the downloads and the
scheduled delivery all use these)."""

from __future__ import annotations

import html
from typing import Any

from outcomes.models import VerdictStatus
from outcomes.reviews.models import Decision, Learning
from outcomes.reviews.snapshot import headline_words
from valuetree.outline import format_figure

# Every verdict status in words, in the order the pages list them (VerdictStatus): a
# hand-kept list here had left out "reached" and "too early" from the headline.
STATUS_WORDS = {status.value: status.label.lower() for status in VerdictStatus}


def evidence_json(rows: Any) -> list[dict[str, Any]]:
    return [
        {
            "kind": row.kind,
            "verdict": row.verdict_id,
            "observation": row.observation_id,
            "pull_run": row.pull_run_id,
            "url": row.url,
            "title": row.title,
            "quote": row.quote,
            "summary": row.summary,
        }
        for row in rows
    ]


def decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.pk,
        "node": decision.node_id,
        "node_title": decision.node_title,
        "review": decision.review_id,
        "kind": decision.kind,
        "rationale": decision.rationale,
        "previous_status": decision.previous_status,
        "pivot_to": decision.pivot_to_id,
        "supersedes": decision.supersedes_id,
        "by": decision.by.get_username() if decision.by else None,
        "at": decision.at.isoformat(),
        "evidence": evidence_json(decision.evidence.all()),
    }


def learning_json(learning: Learning) -> dict[str, Any]:
    return {
        "id": learning.pk,
        "tree": learning.tree.slug,
        "node": learning.node_id,
        "review": learning.review_id,
        "kind": learning.kind,
        "text": learning.text,
        "by": learning.by.get_username() if learning.by else None,
        "at": learning.at.isoformat(),
        "evidence": evidence_json(learning.evidence.all()),
    }


def review_json(data: dict[str, Any]) -> dict[str, Any]:
    """``review_data`` as JSON-ready data: the review's fields, its snapshot (frozen, or
    live for a draft) and hash, the changes, decisions, learnings, amendments and, for
    a draft, the items needing a decision (node id and reasons)."""
    review = data["review"]
    return {
        "id": review.pk,
        "tree": data["tree"].slug,
        "title": review.title,
        "status": review.status,
        "notes": review.notes,
        "held_at": review.held_at.isoformat() if review.held_at else None,
        "attendees": data.get("attendees", []),
        "period_start": review.period_start.isoformat(),
        "as_of": data["as_of"].isoformat() if data["as_of"] else None,
        "previous": review.previous_id,
        "published_at": review.published_at.isoformat() if review.published_at else None,
        "snapshot_version": review.snapshot_version,
        "snapshot_hash": review.snapshot_hash or None,
        "is_snapshot": review.is_snapshot,
        "snapshot": data["snapshot"],
        "changes": data["changes"],
        "decisions": [decision_json(d) for d in data["decisions"]],
        "learnings": [learning_json(row) for row in data["learnings"]],
        "amendments": [
            {
                "text": a.text,
                "reason": a.reason,
                "by": a.by.get_username() if a.by else None,
                "at": a.at.isoformat(),
            }
            for a in data["amendments"]
        ],
        "needed": [
            {"node": item["node"]["id"], "title": item["node"]["title"], "reasons": item["reasons"]}
            for item in data["needed"]
        ],
    }


def _words(status: str | None) -> str:
    return STATUS_WORDS.get(status or "", status or "—")


def _md(value: Any) -> str:
    """User text for Markdown: HTML escaped, so a renderer that passes raw HTML through
    (CommonMark does) never runs a title's or a rationale's ``<script>``."""
    return html.escape(str(value), quote=False)


def _url(url: str) -> str:
    """A URL inside a Markdown autolink ``<…>``: angle brackets and spaces percent-encoded
    (CommonMark autolinks end at the first ``>``)."""
    return url.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")


def review_markdown(data: dict[str, Any]) -> str:
    """The review as a Markdown document: headline, what changed, decisions,
    learnings, amendments, and the tree as it stood."""
    review = data["review"]
    snapshot = data["snapshot"]
    changes = data["changes"]
    head = snapshot["headline"]
    lines = [
        f"# {_md(review.title)}",
        "",
        f"Tree: **{_md(data['tree'].name)}** · status: {review.status} · as of "
        f"{data['as_of']:%Y-%m-%d %H:%M %Z}"
        + (f" · snapshot sha256 `{review.snapshot_hash}`" if review.snapshot_hash else ""),
        "",
        "## Headline",
        "",
        "| | Now |" + (" At the last review |" if data["previous"] else ""),
        "|---|---|" + ("---|" if data["previous"] else ""),
    ]
    before = (data["previous"] or {}).get("headline", {})
    for status in STATUS_WORDS:
        now = head["outcomes_by_status"].get(status, 0)
        row = f"| Bets and initiatives {_words(status)} | {now} |"
        if data["previous"]:
            row += f" {before.get('outcomes_by_status', {}).get(status, 0)} |"
        lines.append(row)
    lines += [
        "",
        "Expected value {expected}, realised {realised}, investment {investment}.".format(
            **{name: _md(words) for name, words in headline_words(head).items()}
        ),
        "",
        "## What changed",
        "",
    ]
    entries = []
    for move in changes["measure_moves"]:
        entries.append(
            f"- Measure **{_md(move['name'])}** ({_md(move['node_title'])}): {_words(move['from'])} → "
            f"{_words(move['to'])}"
        )
    for move in changes["node_moves"]:
        entries.append(
            f"- {move['kind'].capitalize()} **{_md(move['title'])}**: {_words(move['from'])} → "
            f"{_words(move['to'])}"
        )
    for key, verb in (("added", "added"), ("killed", "killed"), ("done", "done")):
        for node in changes[key]:
            entries.append(f"- {node['kind'].capitalize()} **{_md(node['title'])}** {verb}")
    for node in changes["removed"]:
        entries.append(f"- {node['kind'].capitalize()} **{_md(node['title'])}** deleted")
    for node in changes["moved"]:
        entries.append(
            f"- **{_md(node['title'])}** moved from {_md(node['from_parent_title'])} to "
            f"{_md(node['to_parent_title'])}"
        )
    for edit in changes["edits"]:
        entries.append(
            f"- **{_md(edit['name'])}**: {edit['field'].replace('_', ' ')} "
            f"{_md(format_figure(edit['from']))} → {_md(format_figure(edit['to']))}"
            + (f" (by {_md(edit['by'])})" if edit.get("by") else "")
        )
    for metric in changes["metrics"]:
        entries.append(f"- Metric **{_md(metric['name'])}** {metric['change']}")
    lines += entries or ["Nothing changed."]
    lines += ["", "## Decisions", ""]
    for decision in data["decisions"]:
        lines.append(
            f"- **{decision.kind}** {_md(decision.node_title)}: {_md(decision.rationale)}"
            + (f" (by {_md(decision.by.get_username())})" if decision.by else "")
        )
        for evidence in decision.evidence.all():
            label = evidence.summary or evidence.title or evidence.url
            lines.append(f"  - {_md(label)}" + (f" <{_url(evidence.url)}>" if evidence.url else ""))
    if not data["decisions"]:
        lines.append("No decisions recorded.")
    lines += ["", "## Learnings", ""]
    lines += [f"- *{row.kind}*: {_md(row.text)}" for row in data["learnings"]] or ["None recorded."]
    if data["amendments"]:
        lines += ["", "## Amendments", ""]
        for amendment in data["amendments"]:
            who = amendment.by.get_username() if amendment.by else "someone"
            lines.append(
                f"- {amendment.at:%Y-%m-%d} {_md(who)}: {_md(amendment.text)} (why: {_md(amendment.reason)})"
            )
    lines += ["", "## The tree as it stood", ""]
    depth = {"goal": 0, "bet": 1, "initiative": 2}
    for node in snapshot["nodes"]:
        indent = "  " * depth.get(node["kind"], 0)
        lines.append(
            f"{indent}- {node['kind'].capitalize()}: {_md(node['title'])} — "
            f"{node['status']}, {_words(node['outcome']['status'])}"
        )
    return "\n".join(lines) + "\n"
