"""The product owner's week in a real browser (issue 15): edit a measure unchanged and
it saves, the node page and the outline agree on a verdict, the diagram downloads as a
valid SVG, a phone reaches every header link, search finds a node, a deleted subtree
comes back from the trash."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from outcomes import pulling
from outcomes.evaluation import measures_evaluate
from outcomes.models import Measure
from tests.factories import make_metric, make_role_users, make_tree
from valuetree import services
from valuetree.models import Node, ValueTree


@pytest.fixture
def week(live_server):
    users = make_role_users()
    tree = make_tree(users, slug="helix", name="Helix")
    goal = services.node_create(tree=tree, parent=None, title="Results reach clinicians sooner")
    bet = services.node_create(tree=tree, parent=goal, title="Track samples in real time")
    initiative = services.node_create(tree=tree, parent=bet, title="Publish sample events")
    metric = make_metric(tree, name="Labs streaming")
    today = timezone.localdate()
    measure = Measure.objects.create(
        node=initiative,
        name="Labs streaming events",
        unit="labs",
        direction="increase",
        baseline_value=0,
        baseline_date=today - dt.timedelta(days=120),
        target_value=10,
        target_date=today + dt.timedelta(days=240),
        metric=metric,
    )
    now = timezone.now()
    pulling.observations_write(
        metric=metric,
        points=[pulling.Point(now - dt.timedelta(days=30 * (4 - i)), float(i)) for i in range(5)],
        run=None,
        pulled_at=now,
    )
    measures_evaluate(measure_ids=[measure.pk])
    return {"tree": tree, "goal": goal, "bet": bet, "initiative": initiative, "measure": measure}


def test_editing_a_measure_unchanged_saves(page: Page, login: Callable, week):
    login(page, "editor", "pw-editor")
    measure = week["measure"]
    page.goto(f"/measures/{measure.pk}/edit/")
    expect(page.get_by_label("Baseline date")).to_have_value(measure.baseline_date.isoformat())
    expect(page.get_by_label("Target date")).to_have_value(measure.target_date.isoformat())
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/nodes/{measure.node_id}/$"))
    expect(page.locator("#messages")).to_contain_text("saved")


def test_node_page_and_outline_agree_on_the_verdict(page: Page, login: Callable, week):
    login(page, "viewer", "pw-viewer")
    page.goto("/trees/helix/")
    for key in ("goal", "bet", "initiative"):
        node = week[key]
        page.goto("/trees/helix/")
        on_outline = page.locator(f"#card-{node.pk} > .verdict").get_attribute("data-verdict")
        word = page.locator(f"#card-{node.pk} > .verdict .verdict__word").inner_text()
        page.goto(f"/nodes/{node.pk}/")
        badge = page.locator("h1 + p .verdict")
        expect(badge).to_have_attribute("data-verdict", on_outline)
        expect(badge.locator(".verdict__word")).to_have_text(word)
        assert on_outline not in ("", None)
    # The measure's verdict shows its reason on keyboard focus.
    verdict = page.locator("td.measure .verdict")
    verdict.focus()
    expect(verdict.locator(".verdict__reason")).to_be_visible()


def test_diagram_export_downloads_a_valid_svg(page: Page, login: Callable, week):
    login(page, "viewer", "pw-viewer")
    page.goto("/trees/helix/?view=diagram")
    expect(page.locator(".legend")).to_be_visible()
    page.get_by_label("Measures and values").uncheck()
    expect(page.locator(".box__measures").first).to_be_hidden()
    with page.expect_download() as info:
        page.get_by_role("link", name="SVG").click()
    download = info.value
    assert download.suggested_filename == "helix.svg"
    root = ET.parse(download.path()).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "Initiative: Publish sample events" in titles
    with open(download.path(), "rb") as svg:
        assert b"Labs streaming events" not in svg.read()  # toggled off
    # Fold a branch, zoom to fit.
    fold = page.get_by_role("button", name="Fold Track samples in real time")
    fold.click()
    expect(page.locator(f"#kids-{week['bet'].pk}")).to_be_hidden()
    page.get_by_role("button", name="Unfold Track samples in real time").click()
    expect(page.locator(f"#kids-{week['bet'].pk}")).to_be_visible()
    page.get_by_role("button", name="Zoom to fit").click()
    expect(page.get_by_role("button", name="Actual size")).to_be_visible()


def test_a_phone_reaches_every_header_link(page: Page, login: Callable, week):
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "viewer", "pw-viewer")
    page.goto("/trees/helix/")
    header = page.locator(".site-header")
    for name in ("Trees", "Data products", "Discovery board", "Dashboard", "API", "Notifications"):
        link = header.get_by_role("link", name=name, exact=False).first
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
    logout = header.get_by_role("button", name="Log out")
    box = logout.bounding_box()
    assert box and box["x"] + box["width"] <= 390
    wide = page.evaluate(
        "() => [...document.querySelectorAll('body *')].filter("
        "e => e.getBoundingClientRect().right > 391).map(e => e.tagName + '.' + e.className)"
    )
    assert wide == [], wide
    header.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Outcome dashboard")).to_be_visible()


def test_search_finds_a_node_from_the_keyboard(page: Page, login: Callable, week):
    login(page, "viewer", "pw-viewer")
    page.goto("/trees/helix/")
    page.keyboard.press("/")
    expect(page.locator("#site-search")).to_be_focused()
    page.keyboard.type("sample events")
    page.keyboard.press("Enter")
    results = page.locator("#search-results")
    results.get_by_role("link", name="Publish sample events").click()
    expect(page.get_by_role("heading", name="Publish sample events")).to_be_visible()


def test_a_deleted_subtree_is_restored(page: Page, login: Callable, week):
    login(page, "editor", "pw-editor")
    page.goto("/trees/helix/")
    bet = week["bet"]
    page.locator(f"#card-{bet.pk}").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator("#messages")).to_contain_text("trash can restore it")
    expect(page.locator(f"#card-{bet.pk}")).to_have_count(0)
    page.get_by_role("link", name="Trash").click()
    page.get_by_role("button", name="Restore “Track samples in real time”").click()
    expect(page.locator("#messages")).to_contain_text("is back where it was")
    restored = Node.objects.get(title="Track samples in real time")
    expect(page.locator(f"#card-{restored.pk}")).to_be_visible()
    expect(page.locator(".node__card", has_text="Publish sample events")).to_be_visible()


def test_the_slug_is_suggested_from_any_name(page: Page, login: Callable, week):
    """A name with no Latin letter left the suggested slug empty, and the field is
    required: a Hebrew or Japanese tree could not be created without inventing one."""
    login(page, "viewer", "pw-viewer")
    page.goto("/trees/new/")
    slug = page.get_by_label("Slug")
    page.get_by_label("Name").fill("Helix Café")
    expect(slug).to_have_value("helix-cafe")
    page.get_by_label("Name").fill("עץ הערך של המעבדה")
    expect(slug).to_have_value(re.compile(r"^tree-[0-9a-f]{8}$"))
    page.get_by_label("Vision").fill("Results sooner")
    page.get_by_role("button", name=re.compile("Create", re.I)).click()
    expect(page.get_by_role("heading", name="עץ הערך של המעבדה")).to_be_visible()
    assert ValueTree.objects.get(name="עץ הערך של המעבדה").slug.startswith("tree-")
