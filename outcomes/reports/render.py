"""A published review rendered for delivery: e-mail HTML (CSS inlined, charts by
Content-ID) and text from one template set, and the PDF from the same HTML.

Rendered once per review (``review_render``) and reused for every recipient: the
recipient's own unsubscribe link is the only part filled in per message.
"""

from __future__ import annotations

import base64
from email.mime.image import MIMEImage
from typing import Any

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import SafeMIMEMultipart
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from outcomes.reports.charts import report_charts
from outcomes.reports.content import report_content
from outcomes.reports.models import ReviewRender
from outcomes.reviews.models import ValueReview
from outcomes.reviews.selectors import review_data

# What an e-mail lists before "… and N more" (the page, the PDF and the downloads have
# them all).
EMAIL_MAX_CHANGES = 30
# The PDF lists every change and every node. WeasyPrint lays text out line by line and
# draws it glyph by glyph, so the print layout packs them: changes grouped by what they
# share (one heading, then the items in running paragraphs) and the tree as one
# paragraph per goal and per bet with its initiatives. A paragraph holds at most
# PDF_ITEMS_PER_PARAGRAPH items because WeasyPrint re-shapes a paragraph's remaining
# text at each line break. Measured on bench/report.py's 3,010 changes and 1,010
# nodes (wall time, loaded machine): a block per line 8.4 s, one paragraph for all
# minutes, 30-item paragraphs 2.2 s (0.75 s of CPU).
PDF_ITEMS_PER_PARAGRAPH = 30
UNSUBSCRIBE_PLACEHOLDER = "__UNSUBSCRIBE_URL__"
_TEMPLATES = "outcomes/reports/email/"


def _paragraphs(items: list[str]) -> list[list[str]]:
    step = PDF_ITEMS_PER_PARAGRAPH
    return [items[i : i + step] for i in range(0, len(items), step)]


def _tree_paragraphs(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tree as it stood, for print: each goal and each bet heads a paragraph; the
    initiatives below a bet follow it in running text. ``[{"head", "depth",
    "paragraphs"}]``; every node is in exactly one."""
    out: list[dict[str, Any]] = []
    for node in nodes:
        if node["depth"] < 2 or not out:
            out.append({"head": node, "depth": node["depth"], "items": []})
        else:
            out[-1]["items"].append(f"{node['title']} ({node['status']}, {node['outcome']})")
    for group in out:
        group["paragraphs"] = _paragraphs(group.pop("items"))
    return out


def _context(content: dict[str, Any], *, pdf: bool, landscape: bool = False) -> dict[str, Any]:
    if pdf:
        return {
            "r": content,
            "change_groups": [
                {
                    "heading": g["heading"],
                    "count": len(g["items"]),
                    "paragraphs": _paragraphs(g["items"]),
                }
                for g in content["change_groups"]
            ],
            "tree": _tree_paragraphs(content["nodes"]),
            "more_changes": 0,
            "pdf": True,
            "landscape": landscape,
        }
    shown = content["changes"][:EMAIL_MAX_CHANGES]
    return {
        "r": content,
        "changes": shown,
        "more_changes": len(content["changes"]) - len(shown),
        "pdf": False,
        "landscape": landscape,
    }


def email_parts(content: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, HTML with CSS inlined) of a report; the unsubscribe link is
    the placeholder ``__UNSUBSCRIBE_URL__``."""
    context = _context(content, pdf=False)
    subject = " ".join(render_to_string(_TEMPLATES + "subject.txt", context).split())
    text = render_to_string(_TEMPLATES + "body.txt", context)
    html = css_inline.inline(render_to_string(_TEMPLATES + "body.html", context))
    return subject[:300], text, html


def pdf_bytes(content: dict[str, Any], images: dict[str, bytes], *, landscape: bool) -> bytes:
    """The report as a PDF (WeasyPrint) from the e-mail's template: page header with
    the tree's name and as-of date, "Page n of m" in the footer, every change and the
    tree as it stood. ``cid:`` images are served from ``images``; nothing else is
    fetched (no network)."""
    from weasyprint import HTML

    def fetch(url: str) -> dict[str, Any]:
        if url.startswith("cid:") and url[4:] in images:
            return {"string": images[url[4:]], "mime_type": "image/png"}
        raise ValueError(f"Not fetched while rendering a report: {url[:60]}")

    html = render_to_string(
        _TEMPLATES + "body.html", _context(content, pdf=True, landscape=landscape)
    )
    return HTML(string=html, url_fetcher=fetch, base_url="about:blank").write_pdf()


def render_build(review: ValueReview, *, landscape: bool = False, with_pdf: bool = True) -> dict:
    """Everything a delivery needs, without storing it: ``subject``, ``text``, ``html``,
    ``images`` ({cid: PNG}), ``pdf`` (bytes or None), ``content``."""
    content = report_content(review_data(review))
    images = report_charts(content)
    subject, text, html = email_parts(content)
    return {
        "subject": subject,
        "text": text,
        "html": html,
        "images": images,
        "pdf": pdf_bytes(content, images, landscape=landscape) if with_pdf else None,
        "content": content,
    }


def review_render(review: ValueReview, *, landscape: bool = False) -> ReviewRender:
    """The stored render of a published review, made on first use (a second caller
    racing the first gets the first one's row)."""
    found = ReviewRender.objects.filter(review=review).first()
    if found is not None and (found.landscape == landscape or found.pdf is None):
        return found
    built = render_build(review, landscape=landscape)
    fields = {
        "subject": built["subject"],
        "html": built["html"],
        "text": built["text"],
        "images": {cid: base64.b64encode(png).decode() for cid, png in built["images"].items()},
        "pdf": built["pdf"],
        "landscape": landscape,
    }
    if found is not None:
        ReviewRender.objects.filter(pk=found.pk).update(**fields)
        found.refresh_from_db()
        return found
    try:
        with transaction.atomic():
            return ReviewRender.objects.create(review=review, **fields)
    except IntegrityError:
        return ReviewRender.objects.get(review=review)


class ReportEmail(EmailMultiAlternatives):
    """multipart/mixed [ multipart/related [ alternative [text, HTML], images ], PDF ]:
    the images belong with the HTML that shows them by Content-ID."""

    def __init__(self, *args: Any, related: list[MIMEImage] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.related = related or []

    def _create_alternatives(self, msg: Any) -> Any:
        msg = super()._create_alternatives(msg)
        if not self.related:
            return msg
        related = SafeMIMEMultipart(
            _subtype="related", encoding=self.encoding or settings.DEFAULT_CHARSET
        )
        related.attach(msg)
        for image in self.related:
            related.attach(image)
        return related


def report_email(
    *,
    subject: str,
    text: str,
    html: str,
    images: dict[str, bytes],
    pdf: bytes | None,
    to: str,
    unsubscribe_url: str,
    filename: str,
    message_id: str | None = None,
) -> ReportEmail:
    """One recipient's message: text and HTML parts, chart images by Content-ID,
    the PDF attached, RFC 2369/8058 one-click unsubscribe headers."""
    headers = {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
    }
    if message_id:
        headers["Message-ID"] = message_id
    related = []
    for cid, png in images.items():
        image = MIMEImage(png, _subtype="png")
        image.add_header("Content-ID", f"<{cid}>")
        image.add_header("Content-Disposition", "inline", filename=f"{cid}.png")
        related.append(image)
    message = ReportEmail(
        subject=subject,
        body=text.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe_url),
        to=[to],
        headers=headers,
        related=related,
    )
    message.attach_alternative(html.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe_url), "text/html")
    if pdf:
        message.attach(filename, pdf, "application/pdf")
    return message
