"""The tree editor in a real Chromium: a product owner's journey, drag-and-drop moves
(accepted and refused), a viewer's page and user text that stays text.

Drags use Playwright's mouse in small steps, as a hand moves. They are stable
because a list takes only items of its own kind (tree.js): crossing a goal's list of
bets on the way to another bet's initiatives changes nothing on the way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from outcomes.models import Measure
from tests.factories import make_role_users, make_tree, make_user
from valuetree import services
from valuetree.models import DataProductLink, Node

TALL = {"width": 1400, "height": 3000}  # drags need both ends on screen


def drag(page: Page, handle: Locator, target: Locator) -> None:
    """Drag by ``handle`` to the middle of ``target`` in small steps."""
    page.emulate_media(reduced_motion="reduce")  # no sliding while the pointer moves
    start, end = handle.bounding_box(), target.bounding_box()
    assert start and end
    x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    x1, y1 = end["x"] + 60, end["y"] + end["height"] / 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 6, y0 + 6, steps=4)
    page.mouse.move(x1, y1, steps=30)
    page.mouse.move(x1, y1 + 2, steps=2)
    page.mouse.up()


def card(page: Page, title: str) -> Locator:
    return page.locator(".node__card", has=page.get_by_role("link", name=title, exact=True))


def add_child(page: Page, button: Locator, title: str) -> None:
    # Until the page's scripts have run, the link opens the form as a page of its own
    # (the fallback without JavaScript): a click right after a navigation hit it.
    page.wait_for_load_state("load")
    button.click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_label("Title")).to_be_focused()
    dialog.get_by_label("Title").fill(title)
    dialog.locator("button.primary").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(card(page, title)).to_be_visible()


def test_a_new_product_owner_builds_a_tree(page: Page, login: Callable, requested_urls):
    make_user("pat", first_name="Pat")
    domain = services.domain_create(name="Laboratory", slug="lab")
    services.data_product_create(name="Lab results", slug="lab-results", domain=domain)
    page.set_viewport_size(TALL)
    login(page, "pat", "pw-pat")

    # A tree from the home page.
    page.get_by_label("Name").fill("Faster diagnostics")
    page.get_by_label("Slug").fill("faster")
    page.get_by_label("Vision").fill("Every result on time")
    page.get_by_role("button", name="Create tree").click()
    expect(page.get_by_role("heading", name="Faster diagnostics")).to_be_visible()

    # Goal → bet → initiative, and a second bet, each in place.
    add_child(page, page.get_by_role("link", name="Add goal"), "Results reach clinicians sooner")
    goal = card(page, "Results reach clinicians sooner")
    add_child(page, goal.get_by_role("link", name="Add bet"), "Track samples in real time")
    add_child(page, goal.get_by_role("link", name="Add bet"), "Balance analyser load")
    bet = card(page, "Track samples in real time")
    add_child(page, bet.get_by_role("link", name="Add initiative"), "Publish sample events")
    other = card(page, "Balance analyser load")
    add_child(page, other.get_by_role("link", name="Add initiative"), "Courier re-routing pilot")
    # Focus lands on what was just added.
    expect(card(page, "Courier re-routing pilot").locator(".node__title")).to_be_focused()

    # A measure and a data product on the initiative's page.
    card(page, "Publish sample events").get_by_role("link", name="Publish sample events").click()
    page.get_by_role("link", name="Add a measure").click()
    page.get_by_label("Name").fill("Labs streaming events")
    page.get_by_label("Unit").fill("labs")
    page.get_by_label("Direction").select_option("increase")
    page.get_by_label("Baseline value").fill("0")
    page.get_by_label("Baseline date").fill("2026-01-01")
    page.get_by_label("Target value").fill("3")
    page.get_by_label("Target date").fill("2026-12-31")
    page.get_by_role("button", name="Add measure").click()
    expect(page.get_by_role("cell", name="Labs streaming events")).to_be_visible()
    page.wait_for_load_state()  # htmx (deferred) has bound the search box
    page.get_by_label("Find a data product to link").fill("results")
    results = page.get_by_role("list", name="Matching data products")
    expect(results.get_by_text("Lab results", exact=True)).to_be_visible()
    # No silent default: the role is chosen (the browser refuses the form without one).
    results.get_by_role("button", name="Link").click()
    expect(page.get_by_role("link", name="Lab results")).to_have_count(0)
    results.get_by_label("Role of Lab results").select_option("uses")
    results.get_by_role("button", name="Link").click()
    expect(page.get_by_role("link", name="Lab results")).to_be_visible()

    # Drag the initiative to the other bet, reload: it stayed there.
    page.get_by_role("link", name="← Faster diagnostics").click()
    page.wait_for_load_state()
    initiative_id = Node.objects.get(title="Publish sample events").pk
    other_bet_id = Node.objects.get(title="Balance analyser load").pk
    drag(
        page,
        page.locator(f"#card-{initiative_id} .node__handle"),
        card(page, "Courier re-routing pilot"),
    )
    expect(page.locator("#messages")).to_contain_text("“Publish sample events” moved.")
    page.reload()
    moved = page.locator(f"#children-{other_bet_id}")
    expect(moved.get_by_role("link", name="Publish sample events")).to_be_visible()
    measure = moved.locator(".measure", has_text="Labs streaming events")
    expect(measure.get_by_role("link", name="Labs streaming events")).to_be_visible()
    expect(measure.locator(".measure__plan")).to_have_text(re.compile(r"^0 → 3 labs by "))
    assert page.locator(f"#children-{other_bet_id} > li").count() == 2

    initiative_row = Node.objects.get(title="Publish sample events")
    assert initiative_row.parent.title == "Balance analyser load"
    assert Node.objects.filter(parent=initiative_row.parent).count() == 2
    assert list(Measure.objects.values_list("node__title", "target_value")) == [
        ("Publish sample events", 3.0)
    ]
    assert DataProductLink.objects.get().node_id == initiative_row.pk
    origin = page.url.split("/trees/")[0]
    assert all(url.startswith(origin) for url in requested_urls)


def _shaped_tree():
    users = make_role_users()
    tree = make_tree(users)
    goal = services.node_create(tree=tree, parent=None, title="Goal one")
    bet_a = services.node_create(tree=tree, parent=goal, title="Bet A")
    bet_b = services.node_create(tree=tree, parent=goal, title="Bet B")
    for title in ("B1", "B2"):
        services.node_create(tree=tree, parent=bet_b, title=title)
    services.node_create(tree=tree, parent=bet_a, title="A1")
    return tree


def test_the_keyboard_menu_moves_a_node(page: Page, login: Callable):
    tree = _shaped_tree()
    login(page, "editor", "pw-editor")
    page.goto(f"/trees/{tree.slug}/")
    page.wait_for_load_state()
    bet_b = Node.objects.get(title="Bet B").pk
    card(page, "A1").get_by_role("link", name="Move…").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_label("New parent")).to_be_focused()
    dialog.get_by_label("New parent").select_option(str(bet_b))
    dialog.get_by_label("Position", exact=False).fill("")  # empty: last
    dialog.get_by_role("button", name="Move", exact=True).press("Enter")
    expect(page.locator("#messages")).to_contain_text("“A1” moved.")
    expect(card(page, "A1").locator(".node__title")).to_be_focused()
    assert list(Node.objects.filter(parent_id=bet_b).values_list("title", flat=True)) == [
        "B1",
        "B2",
        "A1",
    ]


def test_dragging_an_initiative_to_another_bet_persists(page: Page, login: Callable):
    tree = _shaped_tree()
    page.set_viewport_size(TALL)
    login(page, "editor", "pw-editor")
    page.goto(f"/trees/{tree.slug}/")
    page.wait_for_load_state()
    a1 = Node.objects.get(title="A1")
    bet_b = Node.objects.get(title="Bet B")
    drag(page, page.locator(f"#card-{a1.pk} .node__handle"), card(page, "B2"))
    expect(page.locator("#messages")).to_contain_text("“A1” moved.")
    page.reload()
    expect(page.locator(f"#children-{bet_b.pk}").get_by_role("link", name="A1")).to_be_visible()
    a1.refresh_from_db()
    assert a1.parent_id == bet_b.pk
    assert sorted(Node.objects.filter(parent=bet_b).values_list("position", flat=True)) == [0, 1, 2]


def test_a_refused_drag_leaves_the_tree_and_says_why(page: Page, login: Callable):
    tree = _shaped_tree()
    before = list(Node.objects.order_by("id").values_list("id", "parent_id", "position"))
    page.set_viewport_size(TALL)
    login(page, "editor", "pw-editor")
    page.goto(f"/trees/{tree.slug}/")
    page.wait_for_load_state()
    outline_before = page.locator("#outline").inner_text()
    # An initiative dropped among the goals (on its way it crosses only its bet's
    # card, of another kind, so nothing reorders before the drop).
    a1 = Node.objects.get(title="A1").pk
    drag(page, page.locator(f"#card-{a1} .node__handle"), card(page, "Goal one"))
    expect(page.get_by_role("alert")).to_have_text(
        "Move refused: an initiative must sit under a bet."
    )
    assert page.locator("#outline").inner_text() == outline_before
    after = list(Node.objects.order_by("id").values_list("id", "parent_id", "position"))
    assert after == before


def test_a_viewer_sees_no_edit_controls(page: Page, login: Callable):
    tree = _shaped_tree()
    login(page, "viewer", "pw-viewer")
    page.goto(f"/trees/{tree.slug}/")
    expect(card(page, "B2")).to_be_visible()
    assert page.locator(".node__actions, .node__handle, dialog").count() == 0
    expect(page.get_by_role("link", name="Add goal")).to_have_count(0)
    page.goto(f"/nodes/{Node.objects.get(title='B2').pk}/")
    expect(page.get_by_role("heading", name="Initiative B2")).to_be_visible()
    expect(page.get_by_role("link", name="Add a measure")).to_have_count(0)
    expect(page.get_by_role("button", name="Mark killed")).to_have_count(0)


def test_a_script_title_is_shown_as_text(page: Page, login: Callable):
    tree = _shaped_tree()
    services.node_update(node=Node.objects.get(title="B1"), title="<script>alert(1)</script>")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, "editor", "pw-editor")
    for view in ("outline", "diagram"):
        page.goto(f"/trees/{tree.slug}/?view={view}")
        expect(page.get_by_text("<script>alert(1)</script>")).to_be_visible()
    assert dialogs == []


def test_a_dialog_form_shows_its_errors(page: Page, login: Callable):
    tree = _shaped_tree()
    login(page, "editor", "pw-editor")
    page.goto(f"/trees/{tree.slug}/")
    page.wait_for_load_state()
    card(page, "Bet A").get_by_role("link", name="Edit").click()
    dialog = page.locator("dialog[open]")
    # Spaces pass the browser's `required` check; the server refuses them (a 422).
    dialog.get_by_label("Title").fill("   ")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_text("This field is required.")).to_be_visible()
    expect(dialog.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    assert Node.objects.filter(title="Bet A").exists()
