"""Holding a value review in a real Chromium: open the draft, pivot one item and kill
another with their rationale, add a learning, publish, then see the tree as it stood
and what changed since the last review."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone
from playwright.sync_api import Page, expect

from outcomes.models import Decision, Verdict
from outcomes.reviews import services as review_services
from outcomes.services import measure_create
from tests.factories import make_role_users, make_tree
from valuetree import services
from valuetree.models import Node


def _verdict(measure, status: str, progress: float) -> None:
    Verdict.objects.filter(measure=measure, is_current=True).update(is_current=False)
    now = timezone.now()
    Verdict.objects.create(
        measure=measure,
        evaluated_at=now,
        as_of=now,
        status=status,
        judged_status=status,
        progress=progress,
        expected_progress=0.5,
    )


def _world() -> dict:
    users = make_role_users()
    tree = make_tree(users, slug="lab", name="Lab")
    goal = services.node_create(tree=tree, parent=None, title="Faster results")
    bet = services.node_create(tree=tree, parent=goal, title="Track samples", status="active")
    nodes = {}
    for title, status in (("Shift alerts", "off_track"), ("Courier pilot", "missed")):
        node = services.node_create(tree=tree, parent=bet, title=title, status="active")
        measure = measure_create(
            node=node,
            name=f"{title} measure",
            direction="increase",
            baseline_value=0,
            baseline_date="2026-01-01",
            target_value=10,
            target_date="2027-01-01",
        )
        _verdict(measure, "on_track", 0.5)
        nodes[title] = (node, measure, status)
    # The last review, when both were on track.
    review_services.review_publish(
        review=review_services.review_start(tree=tree, by=users["owner"], title="Q1 review"),
        by=users["owner"],
    )
    for _node, measure, status in nodes.values():
        _verdict(measure, status, 0.1)
    draft = review_services.review_start(tree=tree, by=users["owner"], title="Q2 review")
    return {"users": users, "tree": tree, "draft": draft, "nodes": nodes}


def test_hold_a_review(page: Page, login: Callable, requested_urls):
    world = _world()
    alerts = world["nodes"]["Shift alerts"][0]
    courier = world["nodes"]["Courier pilot"][0]
    page.set_viewport_size({"width": 1400, "height": 2400})
    login(page, "editor", "pw-editor")

    page.goto("/trees/lab/reviews/")
    page.get_by_role("link", name="Continue “Q2 review”").click()
    expect(page.get_by_role("heading", name="Decisions needed (3)")).to_be_visible()
    expect(page.locator(".changes")).to_contain_text("Shift alerts measure")  # on_track → off

    # Pivot the alerts to a queue board.
    item = page.locator(f"#item-{alerts.pk}")
    item.get_by_label("Pivot", exact=True).check()
    item.get_by_label("Rationale").fill("Alerts get muted; a shared board does not.")
    item.get_by_label("…or a new hypothesis").fill("Queue board on the floor")
    item.get_by_role("button", name="Record decision").click()
    decided = page.locator(f"#item-{alerts.pk}.review-item--decided")
    expect(decided).to_contain_text("Alerts get muted")
    expect(decided.get_by_role("link", name="Queue board on the floor")).to_be_visible()

    # Kill the courier pilot; its verdict is ticked as evidence by default.
    item = page.locator(f"#item-{courier.pk}")
    item.get_by_label("Kill", exact=True).check()
    item.get_by_label("Rationale").fill("It never re-routed enough samples.")
    item.get_by_role("button", name="Record decision").click()
    decided = page.locator(f"#item-{courier.pk}.review-item--decided")
    expect(decided).to_contain_text("It never re-routed enough samples.")
    expect(decided.locator(".evidence")).to_contain_text("Verdict missed")
    # Only the decided items were redrawn: the bet is still waiting for its decision.
    expect(page.locator(".review-item:not(.review-item--decided)")).to_have_count(1)

    # A learning.
    learnings = page.locator("form[aria-label='Add a learning']")
    learnings.get_by_label("Kind").select_option("invalidated")
    learnings.get_by_label("What we learned").fill("Push alerts do not change behaviour.")
    learnings.get_by_role("button", name="Add learning").click()
    expect(page.locator(".learnings")).to_contain_text("Push alerts do not change behaviour.")

    # Publish: the page now reads the frozen snapshot.
    page.get_by_role("button", name="Publish this review").click()
    expect(page.get_by_text("as of", exact=False).first).to_be_visible()
    expect(page.get_by_role("button", name="Publish this review")).to_have_count(0)
    expect(page.locator(".changes")).to_contain_text("Courier pilot")

    # The tree as it stood, read-only.
    page.get_by_role("link", name="Tree as it stood").click()
    expect(page.get_by_text("Read-only")).to_be_visible()
    expect(page.get_by_role("link", name="Queue board on the floor")).to_be_visible()
    expect(page.get_by_role("link", name="Kill…")).to_have_count(0)
    page.go_back()

    # What changed since the last review.
    page.get_by_role("link", name="Compare with “Q1 review”").click()
    changes = page.locator(".changes")
    expect(changes).to_contain_text("Queue board on the floor added")
    expect(changes).to_contain_text("Courier pilot killed")
    expect(changes).to_contain_text("Shift alerts measure")

    assert Node.objects.get(pk=courier.pk).status == "killed"
    assert Decision.objects.filter(kind="pivot", node=alerts).exists()
    assert all(url.startswith(page.url.split("/trees/")[0]) for url in requested_urls)
