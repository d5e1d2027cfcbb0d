"""The Content-Security-Policy in a real Chromium: with scripts from our origin only,
the dashboard's Plotly charts and the editor's htmx dialogs work, and nothing on the
way is blocked (no `securitypolicyviolation` event, no CSP console error)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.utils import timezone
from playwright.sync_api import Page, expect

from outcomes.evaluation import measures_evaluate
from outcomes.services import measure_create
from valuetree import services

WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def test_charts_and_dialogs_work_under_the_policy(tree, page: Page, login: Callable):
    goal = services.node_create(tree=tree, parent=None, title="Results sooner")
    measure_create(
        node=goal,
        name="Turnaround",
        direction="decrease",
        baseline_value=48,
        baseline_date=dt.date(2026, 1, 1),
        target_value=24,
        target_date=dt.date(2027, 1, 1),
    )
    measures_evaluate(at=timezone.now())
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(WATCH)
    login(page, "owner", "pw-owner")

    page.goto("/dashboard/")
    expect(page.locator("#status-chart .main-svg").first).to_be_visible()
    assert page.evaluate("window.__cspViolations") == []

    page.goto(f"/trees/{tree.slug}/")
    page.get_by_role("link", name="Add goal").click()
    expect(page.locator("dialog[open]").get_by_label("Title")).to_be_focused()
    assert page.evaluate("window.__cspViolations") == []
    assert [text for text in console if "Content Security Policy" in text] == []
