"""The diagram for a slide: SVG, PNG and Mermaid exports from the page and the API
(issue 15), with verdict colours, a legend, killed nodes greyed and measures' values."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from outcomes.models import Measure
from tests.factories import bulk_tree, make_tree
from valuetree import services
from valuetree.models import Node

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def shape(tree):
    goal = services.node_create(tree=tree, parent=None, title='Results reach <clinicians> "sooner"')
    bet = services.node_create(tree=tree, parent=goal, title="Track samples in real time")
    kept = services.node_create(tree=tree, parent=bet, title="Publish sample events")
    killed = services.node_create(tree=tree, parent=bet, title="Courier re-routing pilot")
    services.node_update(node=Node.objects.get(pk=killed.pk), status="killed")
    Measure.objects.create(
        node=kept,
        name="Labs streaming",
        unit="labs",
        direction="increase",
        baseline_value=0,
        baseline_date=dt.date(2026, 1, 1),
        target_value=3,
        target_date=dt.date(2026, 12, 31),
    )
    return {"goal": goal, "bet": bet, "kept": kept, "killed": killed}


@pytest.mark.django_db
class TestExports:
    @pytest.mark.parametrize("base", ["/trees/tree/diagram.svg", "/api/trees/tree/diagram/"])
    def test_svg_is_valid_and_complete(self, client, users, shape, base):
        client.force_login(users["viewer"])
        response = client.get(base)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/svg+xml"
        assert 'filename="tree.svg"' in response["Content-Disposition"]
        root = ET.fromstring(response.content)  # well-formed XML, user text escaped
        assert root.tag == f"{SVG}svg"
        texts = [t.text for t in root.iter(f"{SVG}text")]
        titles = [t.text for t in root.iter(f"{SVG}title")]
        assert 'Goal: Results reach <clinicians> "sooner"' in titles
        assert "Results reach <clinicians>" in texts  # wrapped over two lines
        assert "Killed" in texts  # the killed initiative, and the legend
        assert "On track" in texts and "Missed" in texts  # the legend
        assert "Labs streaming: no value yet" in texts
        assert len(list(root.iter(f"{SVG}path"))) == 4  # vision→goal→bet→2 initiatives
        boxes = {g.find(f"{SVG}title").text: g for g in root.iter(f"{SVG}g")}
        assert boxes["Initiative: Courier re-routing pilot"].get("opacity") == "0.7"

    def test_measures_can_be_left_out(self, client, users, shape):
        client.force_login(users["viewer"])
        for url in (
            "/trees/tree/diagram.svg?measures=0",
            "/api/trees/tree/diagram/?measures=false",
        ):
            assert b"Labs streaming" not in client.get(url).content

    @pytest.mark.parametrize(
        "base", ["/trees/tree/diagram.png", "/api/trees/tree/diagram/?format=png"]
    )
    def test_png(self, client, users, shape, base):
        client.force_login(users["viewer"])
        response = client.get(base)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response.content[:8] == b"\x89PNG\r\n\x1a\n"

    @pytest.mark.parametrize(
        "base", ["/trees/tree/diagram.mermaid", "/api/trees/tree/diagram/?format=mermaid"]
    )
    def test_mermaid(self, client, users, shape, base):
        client.force_login(users["viewer"])
        text = client.get(base).content.decode()
        assert text.startswith("flowchart LR\n")
        assert (
            f'  n{shape["goal"].pk}["Goal: Results reach &lt;clinicians&gt; #quot;sooner#quot;'
            in text
        )
        assert f"  n{shape['bet'].pk} --> n{shape['killed'].pk}" in text
        assert f"n{shape['killed'].pk}[" in text and ":::killed" in text
        assert "classDef on_track" in text

    def test_a_control_character_stored_before_is_dropped_not_a_500(self, client, users, shape):
        # A vertical tab is how a word processor writes a line break: a title may hold
        # one (text survives export and import exactly), the drawings leave it out.
        Node.objects.filter(pk=shape["bet"].pk).update(title="Track\x0bsamples\x1b now")
        client.force_login(users["viewer"])
        svg = client.get("/trees/tree/diagram.svg").content
        titles = [t.text for t in ET.fromstring(svg).iter(f"{SVG}title")]
        assert "Bet: Track samples now" in titles
        response = client.get("/trees/tree/diagram.png")
        assert response.status_code == 200 and response.content[:4] == b"\x89PNG"
        text = client.get("/trees/tree/diagram.mermaid").content.decode()
        assert f'  n{shape["bet"].pk}["Bet: Track samples now<br/>' in text

    def test_mermaid_labels_cannot_carry_directives_or_entities(self, client, users, shape):
        title = "%%{init: {'theme':'dark'}}%% #quot; end --> click n1 \"]"
        Node.objects.filter(pk=shape["bet"].pk).update(title=title)
        client.force_login(users["viewer"])
        text = client.get("/trees/tree/diagram.mermaid").content.decode()
        assert "%" not in text  # Mermaid reads %%{init}%% anywhere, labels included
        line = next(line for line in text.splitlines() if line.startswith(f"  n{shape['bet'].pk}["))
        assert line == (
            f"  n{shape['bet'].pk}[\"Bet: #37;#37;{{init: {{'theme':'dark'}}}}#37;#37; "
            '#35;quot; end --&gt; click n1 #quot;#93;<br/>No data"]:::no_data'
        )

    def test_a_tall_tree_is_drawn_smaller_and_a_huge_one_refused(self, client, users):
        # cairo refuses surfaces over 32,767 px: 300 initiatives at twice the size (and
        # 1,000) were a 500.
        tall = make_tree(users, slug="tall")
        bulk_tree(tall, goals=3, bets=10, initiatives=10, measures=1)
        huge = make_tree(users, slug="huge")
        bulk_tree(huge, goals=10, bets=10, initiatives=10, measures=1)
        client.force_login(users["viewer"])
        response = client.get("/trees/tall/diagram.png")
        assert response.status_code == 200 and response.content[:4] == b"\x89PNG"
        response = client.get("/trees/huge/diagram.png")
        assert response.status_code == 422
        assert "too large for a readable PNG" in response.content.decode()
        response = client.get("/api/trees/huge/diagram/?format=png")
        assert response.status_code == 400
        assert "download the SVG" in response.json()["format"][0]
        assert client.get("/trees/huge/diagram.svg").status_code == 200

    def test_unknown_format_is_refused(self, client, users, shape):
        client.force_login(users["viewer"])
        assert client.get("/trees/tree/diagram.gif").status_code == 404
        response = client.get("/api/trees/tree/diagram/?format=gif")
        assert response.status_code == 400
        assert "format" in response.json()

    def test_outsiders_get_nothing(self, client, users, shape):
        client.force_login(users["outsider"])
        assert client.get("/trees/tree/diagram.svg").status_code == 404
        assert client.get("/api/trees/tree/diagram/").status_code == 404
        client.logout()
        assert client.get("/trees/tree/diagram.svg").status_code == 302
        assert client.get("/api/trees/tree/diagram/").status_code in (401, 403)

    @pytest.mark.parametrize("shape_", [(1, 3, 2), (10, 9, 10)], ids=["10", "1000"])
    def test_export_queries_do_not_grow(self, users, client, django_assert_max_num_queries, shape_):
        tree = make_tree(users, slug=f"big{shape_[0]}")
        bulk_tree(tree, goals=shape_[0], bets=shape_[1], initiatives=shape_[2], measures=1)
        client.force_login(users["viewer"])
        with django_assert_max_num_queries(7):
            assert client.get(f"/trees/{tree.slug}/diagram.svg").status_code == 200


@pytest.mark.django_db
def test_diagram_page_offers_the_tools(client, users, shape):
    client.force_login(users["viewer"])
    html = client.get("/trees/tree/?view=diagram").content.decode()
    for text in (
        'id="show-measures"',
        'href="/trees/tree/diagram.svg"',
        "js/diagram.js",
        'class="legend"',
        'class="box__toggle"',
        'class="box__measures"',
    ):
        assert text in html


@pytest.mark.django_db
def test_a_killed_nodes_measures_carry_no_verdict_colour(client, users, tree, shape):
    """Issue 15 defect 3, for measures: a killed initiative's measure kept its green
    "achieved" dot in the diagram and the SVG, as if the work were alive."""
    import re

    from django.utils import timezone

    from outcomes import pulling
    from outcomes.evaluation import measures_evaluate
    from tests.factories import make_metric
    from valuetree.diagram import VERDICT_COLOURS

    metric = make_metric(tree, name="Routes")
    measures = []
    for node in (shape["kept"], shape["killed"]):
        measures.append(
            Measure.objects.create(
                node=node,
                name=f"Routes of {node.pk}",
                direction="increase",
                baseline_value=0,
                baseline_date=dt.date(2025, 1, 1),
                target_value=3,
                target_date=dt.date(2025, 12, 31),
                metric=metric,
            )
        )
    now = timezone.now()
    pulling.observations_write(
        metric=metric, points=[pulling.Point(now, 5.0)], run=None, pulled_at=now
    )
    measures_evaluate(measure_ids=[m.pk for m in measures])
    client.force_login(users["viewer"])
    html = client.get("/trees/tree/?view=diagram").content.decode()
    found = re.findall(r'data-verdict="([a-z_]*)" aria-hidden="true"></span>(Routes of \d+)', html)
    dots = {name: status for status, name in found}
    assert dots[f"Routes of {shape['kept'].pk}"] == "achieved"
    assert dots[f"Routes of {shape['killed'].pk}"] == ""
    root = ET.fromstring(client.get("/trees/tree/diagram.svg").content)
    boxes = {g.find(f"{SVG}title").text: g for g in root.iter(f"{SVG}g")}
    killed = boxes["Initiative: Courier re-routing pilot"]
    assert {c.get("fill") for c in killed.iter(f"{SVG}circle")} == {VERDICT_COLOURS["no_data"]}
    kept = boxes["Initiative: Publish sample events"]
    assert VERDICT_COLOURS["achieved"] in {c.get("fill") for c in kept.iter(f"{SVG}circle")}


@pytest.mark.django_db
def test_reached_and_too_early_have_their_colours_and_a_legend_that_fits(client, users, tree):
    """The SVG drew "Reached, must hold" (the demo's best bet) grey like "No data", the
    Mermaid export gave it a class with no style, and neither legend named it."""
    from valuetree.diagram import VERDICT_COLOURS

    goal = services.node_create(tree=tree, parent=None, title="Goal")
    data = {
        "document": {
            "name": "T",
            "vision": "V",
            "goals": [
                {
                    "id": goal.pk,
                    "kind": "goal",
                    "title": "Goal",
                    "status": "active",
                    "children": [],
                    "measures": [],
                }
            ],
        },
        "verdicts": {goal.pk: ("reached", "Reached, must hold (score 0.94)")},
        "states": {},
    }
    from valuetree.diagram import render_mermaid, render_svg

    root = ET.fromstring(render_svg(data))
    fills = [c.get("fill") for c in root.iter(f"{SVG}circle")]
    assert VERDICT_COLOURS["reached"] == "#3a9348" and fills[0] == "#3a9348"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Reached, must hold" in texts and "Too early to tell" in texts
    last = list(root.iter(f"{SVG}text"))[-1]  # the legend's last entry fits
    assert float(last.get("x")) + 7 * len(last.text) <= float(root.get("width"))
    mermaid = render_mermaid(data)
    assert ":::reached" in mermaid and "classDef reached fill:#3a9348" in mermaid
    client.force_login(users["viewer"])
    html = client.get(f"/trees/{tree.slug}/?view=diagram").content.decode()
    legend = html.split('class="legend"')[1].split("</ul>")[0]
    assert "Reached, must hold" in legend and "Too early to tell" in legend
