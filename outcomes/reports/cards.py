"""Slack Block Kit and Teams Adaptive Card payloads of a report (pure functions of
``report_content``, tested apart from the transports).

Slack (https://api.slack.com/reference/block-kit/blocks): at most 50 blocks a
message, a header's text ≤150 characters, a section's text ≤3,000, a button's text
≤75, the fallback ``text`` kept under 4,000. The blocks are built with slack_sdk's
models, which refuse anything past those limits, so a payload that builds is one
Slack accepts. Teams Workflows take a ``message`` with one Adaptive Card (1.4) and
refuse posts above ~28 KB; the old Office 365 MessageCard is retired.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

SLACK_MAX_BLOCKS = 50
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FALLBACK_MAX = 4000
# How many changes and decisions a chat message lists (the PDF and page have them all).
CHAT_TOP_CHANGES = 10
CHAT_TOP_DECISIONS = 10


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn_escape(text: str) -> str:
    """Slack's three control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bullets(lines: list[str], more: int, limit: int = SLACK_SECTION_MAX) -> str:
    text = ""
    for index, line in enumerate(lines):
        entry = f"• {_mrkdwn_escape(line)}\n"
        if len(text) + len(entry) > limit - 40:
            more += len(lines) - index
            break
        text += entry
    if more:
        text += f"… and {more} more"
    return text.rstrip() or "—"


def _headline_text(content: dict[str, Any]) -> str:
    parts = []
    for row in content["headline"]:
        if row["now"] or row["before"]:
            was = f" (was {row['before']})" if row["before"] is not None else ""
            parts.append(f"{row['label']}: *{row['now']}*{was}")
    return " · ".join(parts) or "No bets or initiatives yet."


def slack_payload(content: dict[str, Any]) -> dict[str, Any]:
    """The incoming-webhook JSON: header, as-of, headline counts, the top changes,
    decisions (made, and needed for a draft), a button to the review."""
    changes = content["changes"]
    decisions = [f"{d['kind'].upper()} {d['node']}: {d['rationale']}" for d in content["decisions"]]
    blocks: list[Any] = [
        HeaderBlock(text=_cut(f"{content['title']} · {content['tree']}", SLACK_HEADER_MAX)),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=_cut(
                        f"As of {content['as_of']:%Y-%m-%d %H:%M %Z} · {content['node_count']} "
                        f"nodes · {content['changes_count']} changes",
                        SLACK_HEADER_MAX,
                    )
                )
            ]
        ),
        SectionBlock(
            text=MarkdownTextObject(text=_cut(_headline_text(content), SLACK_SECTION_MAX))
        ),
        DividerBlock(),
        SectionBlock(
            text=MarkdownTextObject(
                text="*What changed*\n"
                + _bullets(changes[:CHAT_TOP_CHANGES], max(0, len(changes) - CHAT_TOP_CHANGES))
            )
        ),
        SectionBlock(
            text=MarkdownTextObject(
                text=f"*Decisions ({len(decisions)})*\n"
                + _bullets(
                    decisions[:CHAT_TOP_DECISIONS], max(0, len(decisions) - CHAT_TOP_DECISIONS)
                )
            )
        ),
    ]
    if content["needed"]:
        needed = content["needed"]
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*Decisions needed ({len(needed)})*\n"
                    + _bullets(
                        needed[:CHAT_TOP_DECISIONS], max(0, len(needed) - CHAT_TOP_DECISIONS)
                    )
                )
            )
        )
    blocks.append(
        ActionsBlock(
            elements=[ButtonElement(text="Open the review", url=content["url"], action_id="open")]
        )
    )
    assert len(blocks) <= SLACK_MAX_BLOCKS
    fallback = _cut(
        f"{content['title']} · {content['tree']}: {content['changes_count']} changes, "
        f"{len(decisions)} decisions. {content['url']}",
        SLACK_FALLBACK_MAX,
    )
    return {"text": fallback, "blocks": [block.to_dict() for block in blocks]}


def teams_payload(content: dict[str, Any]) -> dict[str, Any]:
    """The Workflows webhook JSON: a message with one Adaptive Card of the same
    content as the Slack message (TextBlocks, a FactSet, an OpenUrl action)."""
    changes = content["changes"]
    more = max(0, len(changes) - CHAT_TOP_CHANGES)
    decisions = content["decisions"]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "text": f"{content['title']} · {content['tree']}",
        },
        {
            "type": "TextBlock",
            "isSubtle": True,
            "spacing": "None",
            "wrap": True,
            "text": f"As of {content['as_of']:%Y-%m-%d %H:%M %Z} · {content['changes_count']} changes",
        },
        {
            "type": "FactSet",
            "facts": [
                {
                    "title": row["label"],
                    "value": str(row["now"])
                    + (f" (was {row['before']})" if row["before"] is not None else ""),
                }
                for row in content["headline"]
            ],
        },
        {"type": "TextBlock", "weight": "Bolder", "text": "What changed", "wrap": True},
        {
            "type": "TextBlock",
            "wrap": True,
            "text": "\n".join(f"- {_cut(line, 300)}" for line in changes[:CHAT_TOP_CHANGES])
            + (f"\n\n… and {more} more" if more else "")
            if changes
            else "Nothing changed.",
        },
        {"type": "TextBlock", "weight": "Bolder", "text": f"Decisions ({len(decisions)})"},
        {
            "type": "TextBlock",
            "wrap": True,
            "text": "\n".join(
                f"- {d['kind'].upper()} {d['node']}: {_cut(d['rationale'], 300)}"
                for d in decisions[:CHAT_TOP_DECISIONS]
            )
            or "None recorded.",
        },
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open the review", "url": content["url"]}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }
