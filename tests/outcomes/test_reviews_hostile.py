"""Hostile input to value reviews, decisions and learnings: every request answers 2xx
or a clear 4xx (never 500), bad input changes nothing, and no other tree leaks."""

from __future__ import annotations

import pytest

from outcomes.models import Decision, Evidence, Learning, Observation, PullRun, ValueReview
from outcomes.reviews import services
from tests.factories import make_metric, make_role_users, make_tree
from tests.outcomes import test_reviews
from valuetree import services as node_services
from valuetree.models import Node

shape = test_reviews.shape
verdict = test_reviews.verdict

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def other(db):
    """A second tree nobody of the first tree may read, with a verdict, an observation
    and a pull run on its own measure."""
    from django.utils import timezone

    from outcomes.services import measure_create

    users = make_role_users("b-")
    tree = make_tree(users, slug="other", name="Other")
    goal = node_services.node_create(tree=tree, parent=None, title="Their goal")
    bet = node_services.node_create(tree=tree, parent=goal, title="Their bet", status="active")
    metric = make_metric(tree, kind="push", name="Their metric")
    measure = measure_create(
        node=bet,
        name="Their measure",
        direction="increase",
        baseline_value=1,
        baseline_date="2026-01-01",
        target_value=2,
        target_date="2027-01-01",
        metric=metric,
    )
    now = timezone.now()
    observation = Observation.objects.create(
        metric=metric, period_start=now, pulled_at=now, value=1.5
    )
    run = PullRun.objects.create(metric=metric, trigger="manual", started_at=now, status="ok")
    return {
        "users": users,
        "tree": tree,
        "bet": bet,
        "verdict": verdict(measure, "off_track"),
        "observation": observation,
        "run": run,
    }


def counts():
    return (
        Decision.objects.count(),
        Evidence.objects.count(),
        Learning.objects.count(),
        ValueReview.objects.count(),
        sorted(Node.objects.values_list("pk", "status", "title")),
    )


def decide(client, node, **body):
    return client.post(f"/api/nodes/{node.pk}/decisions/", body, format="json")


# --- Decisions through the API --------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "kill"},
        {"kind": "kill", "rationale": None},
        {"kind": "kill", "rationale": ""},
        {"kind": "kill", "rationale": "   \n\t "},
        {"kind": "kill", "rationale": ["why"]},
        {"kind": "kill", "rationale": {"a": 1}},
        {"kind": "explode", "rationale": "x"},
        {"kind": None, "rationale": "x"},
        {"kind": 3, "rationale": "x"},
        {"kind": "kill", "rationale": "x\x00y"},
        {"kind": "kill", "rationale": "x", "evidence": "verdict:1"},
        {"kind": "kill", "rationale": "x", "evidence": {"kind": "verdict", "id": 1}},
        {"kind": "kill", "rationale": "x", "evidence": [{"kind": "verdict"}]},
        {"kind": "kill", "rationale": "x", "evidence": [{"kind": "verdict", "id": "abc"}]},
        {"kind": "kill", "rationale": "x", "evidence": [{"kind": "verdict", "id": 2**70}]},
        {"kind": "kill", "rationale": "x", "evidence": [{"kind": "observation", "id": -1}]},
        {"kind": "kill", "rationale": "x", "evidence": [{"kind": "link"}]},
        {"kind": "kill", "rationale": "x", "evidence": [{"kind": "link", "url": "javascript:1"}]},
        {"kind": "kill", "rationale": "x", "evidence": [{"kind": "link", "url": "x" * 600}]},
        {"kind": "kill", "rationale": "x", "evidence": [{"kind": "nope", "id": 1}]},
        {"kind": "kill", "rationale": "x", "evidence": [None]},
        {"kind": "kill", "rationale": "x", "review": 2**70},
        {"kind": "kill", "rationale": "x", "review": "abc"},
        {"kind": "kill", "rationale": "x", "supersedes": 2**70},
        {"kind": "kill", "rationale": "x", "default_evidence": "maybe"},
        {"kind": "pivot", "rationale": "x"},
        {"kind": "pivot", "rationale": "x", "pivot_title": "   "},
        {"kind": "pivot", "rationale": "x", "pivot_to": 2**70},
        {"kind": "pivot", "rationale": "x", "pivot_title": "T" * 5000},
        {"kind": "pivot", "rationale": "x", "pivot_title": "ok\x00"},
        {"kind": "kill", "rationale": "x", "pivot_title": "Not a pivot"},
    ],
)
def test_bad_decision_bodies_are_400_and_change_nothing(tree, shape, client_for, users, body):
    before = counts()
    response = decide(client_for(users["editor"]), shape["drop"], **body)
    assert response.status_code == 400, response.content
    assert counts() == before


def test_a_json_body_that_is_not_an_object_is_400(tree, shape, client_for, users):
    client = client_for(users["editor"])
    before = counts()
    for raw in ("[]", '"kill"', "null", "{", "1"):
        response = client.post(
            f"/api/nodes/{shape['drop'].pk}/decisions/", raw, content_type="application/json"
        )
        assert response.status_code == 400, (raw, response.content)
    assert counts() == before


def test_a_very_long_rationale_is_kept_whole(tree, shape, client_for, users):
    text = "why " * 50_000
    response = decide(client_for(users["editor"]), shape["keep"], kind="persevere", rationale=text)
    assert response.status_code == 201
    assert Decision.objects.get().rationale == text.strip()


def test_deciding_on_a_goal_is_refused(tree, shape, client_for, users):
    before = counts()
    response = decide(client_for(users["editor"]), shape["goal"], kind="kill", rationale="x")
    assert response.status_code == 400
    assert "node" in response.json()
    assert counts() == before


def test_another_trees_node_is_404_for_its_outsiders(tree, shape, other, client_for, users):
    before = counts()
    response = decide(client_for(users["editor"]), other["bet"], kind="kill", rationale="x")
    assert response.status_code == 404
    assert (
        client_for(users["editor"]).get(f"/api/nodes/{other['bet'].pk}/decisions/").status_code
        == 404
    )
    assert counts() == before


@pytest.mark.parametrize("kind", ["verdict", "observation", "pull_run"])
def test_evidence_from_another_tree_is_refused(tree, shape, other, client_for, users, kind):
    pk = {
        "verdict": other["verdict"],
        "observation": other["observation"],
        "pull_run": other["run"],
    }[kind].pk
    before = counts()
    response = decide(
        client_for(users["editor"]),
        shape["drop"],
        kind="kill",
        rationale="x",
        evidence=[{"kind": kind, "id": pk}],
    )
    assert response.status_code == 400
    assert "Their" not in response.content.decode()
    assert counts() == before


def test_evidence_from_a_sibling_node_of_the_same_tree_is_refused(tree, shape, client_for, users):
    foreign = shape["Reorder rate"].verdicts.get(is_current=True).pk
    before = counts()
    response = decide(
        client_for(users["editor"]),
        shape["drop"],
        kind="kill",
        rationale="x",
        evidence=[{"kind": "verdict", "id": foreign}],
    )
    assert response.status_code == 400
    assert counts() == before


def test_review_supersedes_and_pivot_from_another_tree_are_refused(
    tree, shape, other, client_for, users
):
    theirs = services.review_start(tree=other["tree"], by=None)
    their_decision = services.decision_create(
        node=other["bet"], kind="persevere", rationale="theirs", by=None
    )
    before = counts()
    client = client_for(users["editor"])
    for body in (
        {"kind": "persevere", "rationale": "x", "review": theirs.pk},
        {"kind": "persevere", "rationale": "x", "supersedes": their_decision.pk},
        {"kind": "pivot", "rationale": "x", "pivot_to": other["bet"].pk},
    ):
        response = decide(client, shape["bet"], **body)
        assert response.status_code == 400, body
        assert "Their" not in response.content.decode()
    assert counts() == before


def test_pivot_to_self_a_goal_or_a_killed_node_is_refused(tree, shape, client_for, users):
    services.decision_create(node=shape["keep"], kind="kill", rationale="x", by=None)
    before = counts()
    client = client_for(users["editor"])
    for target in (shape["drop"], shape["goal"], shape["keep"], shape["bet"]):
        response = decide(client, shape["drop"], kind="pivot", rationale="x", pivot_to=target.pk)
        assert response.status_code == 400, target.title
    assert counts() == before


def test_a_pivot_chain_never_pivots_back_to_a_killed_hypothesis(tree, shape, client_for, users):
    client = client_for(users["editor"])
    first = decide(client, shape["drop"], kind="pivot", rationale="a", pivot_title="Email")
    assert first.status_code == 201
    email = Node.objects.get(title="Email")
    assert email.parent_id == shape["bet"].pk
    back = decide(client, email, kind="pivot", rationale="b", pivot_to=shape["drop"].pk)
    assert back.status_code == 400
    onward = decide(client, email, kind="pivot", rationale="c", pivot_title="Phone")
    assert onward.status_code == 201
    assert Node.objects.get(pk=email.pk).status == "killed"
    assert Node.objects.get(title="Phone").status == "active"
    # Deciding again on a killed node: refused, persevere included? Kill/done/pivot are.
    again = decide(client, email, kind="kill", rationale="again")
    assert again.status_code == 400


def test_superseding_a_decision_of_another_node_is_refused(tree, shape, client_for, users):
    earlier = services.decision_create(node=shape["keep"], kind="persevere", rationale="x", by=None)
    before = counts()
    response = decide(
        client_for(users["editor"]),
        shape["drop"],
        kind="persevere",
        rationale="x",
        supersedes=earlier.pk,
    )
    assert response.status_code == 400
    assert counts() == before


def test_decisions_are_never_deleted_or_changed(tree, shape, client_for, users):
    decision = services.decision_create(node=shape["drop"], kind="kill", rationale="x", by=None)
    for role in ("owner", "editor"):
        client = client_for(users[role])
        for method in ("delete", "patch", "put"):
            response = getattr(client, method)(
                f"/api/decisions/{decision.pk}/", {"rationale": "y"}, format="json"
            )
            assert response.status_code == 405
        response = client.delete(f"/api/nodes/{shape['drop'].pk}/decisions/")
        assert response.status_code == 405
    response = client_for(users["outsider"]).delete(f"/api/decisions/{decision.pk}/")
    assert response.status_code in (404, 405)
    assert Decision.objects.get(pk=decision.pk).rationale == "x"


@pytest.mark.parametrize("role,status", [("viewer", 403), ("leadership", 403), ("outsider", 404)])
def test_readers_and_outsiders_cannot_write(tree, shape, client_for, users, role, status):
    review = services.review_start(tree=tree, by=None)
    learning = services.learning_create(tree=tree, by=None, kind="surprise", text="hm")
    client = client_for(users[role])
    before = counts()
    calls = [
        ("post", f"/api/trees/{tree.slug}/reviews/", {}),
        ("patch", f"/api/reviews/{review.pk}/", {"title": "mine"}),
        ("post", f"/api/reviews/{review.pk}/hold/", {}),
        ("post", f"/api/reviews/{review.pk}/publish/", {}),
        ("post", f"/api/reviews/{review.pk}/amend/", {"text": "a", "reason": "b"}),
        ("post", f"/api/nodes/{shape['drop'].pk}/decisions/", {"kind": "kill", "rationale": "x"}),
        ("post", f"/api/trees/{tree.slug}/learnings/", {"kind": "process", "text": "x"}),
        ("patch", f"/api/learnings/{learning.pk}/", {"text": "y"}),
        ("delete", f"/api/learnings/{learning.pk}/", None),
    ]
    for method, url, body in calls:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == status, (method, url, response.status_code)
    assert counts() == before
    assert ValueReview.objects.get().title == review.title


def test_anonymous_is_refused_everywhere(tree, shape, client_for):
    review = services.review_start(tree=tree, by=None)
    client = client_for(None)
    for url in (
        f"/api/trees/{tree.slug}/reviews/",
        f"/api/reviews/{review.pk}/",
        f"/api/nodes/{shape['drop'].pk}/decisions/",
        "/api/learnings/",
    ):
        assert client.get(url).status_code in (401, 403)


# --- Reviews through the API ----------------------------------------------------------


def test_starting_twice_gives_one_draft(tree, shape, client_for, users):
    client = client_for(users["editor"])
    assert client.post(f"/api/trees/{tree.slug}/reviews/", {}, format="json").status_code == 201
    response = client.post(f"/api/trees/{tree.slug}/reviews/", {}, format="json")
    assert response.status_code == 400
    assert ValueReview.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"title": "T" * 201},
        {"title": None},
        {"title": ["x"]},
        {"notes": None},
        {"title": "bad\x00"},
        {"notes": "bad\x00"},
    ],
)
def test_bad_review_start_is_400(tree, client_for, users, body):
    response = client_for(users["editor"]).post(
        f"/api/trees/{tree.slug}/reviews/", body, format="json"
    )
    assert response.status_code == 400
    assert ValueReview.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "T" * 201},
        {"title": None},
        {"attendees": "owner"},
        {"attendees": ["nobody"]},
        {"attendees": ["b-owner"]},
        {"attendees": [None]},
        {"notes": "x\x00"},
    ],
)
def test_bad_review_edits_are_400(tree, other, client_for, users, body):
    review = services.review_start(tree=tree, by=None, title="Q1")
    response = client_for(users["editor"]).patch(f"/api/reviews/{review.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    review.refresh_from_db()
    assert (review.title, review.notes, review.attendees.count()) == ("Q1", "", 0)


def test_published_review_cannot_be_edited_held_published_again_or_amended_as_draft(
    tree, shape, client_for, users
):
    client = client_for(users["editor"])
    review = services.review_start(tree=tree, by=None, title="Q1")
    amend = client.post(
        f"/api/reviews/{review.pk}/amend/", {"text": "a", "reason": "b"}, format="json"
    )
    assert amend.status_code == 400
    assert client.post(f"/api/reviews/{review.pk}/publish/").status_code == 200
    review.refresh_from_db()
    frozen = (review.snapshot_hash, review.as_of, review.title, review.changes)
    assert client.post(f"/api/reviews/{review.pk}/publish/").status_code == 400
    assert client.post(f"/api/reviews/{review.pk}/hold/").status_code == 400
    assert (
        client.patch(f"/api/reviews/{review.pk}/", {"title": "New"}, format="json").status_code
        == 400
    )
    assert (
        client.patch(
            f"/api/reviews/{review.pk}/", {"attendees": ["owner"]}, format="json"
        ).status_code
        == 400
    )
    assert (
        decide(client, shape["drop"], kind="kill", rationale="x", review=review.pk).status_code
        == 400
    )
    for body in ({"text": "", "reason": "b"}, {"text": "a", "reason": "  "}, {"text": "a"}):
        assert (
            client.post(f"/api/reviews/{review.pk}/amend/", body, format="json").status_code == 400
        )
    review.refresh_from_db()
    assert (review.snapshot_hash, review.as_of, review.title, review.changes) == frozen
    assert review.attendees.count() == 0
    assert review.amendments.count() == 0


def test_compare_refuses_reviews_of_another_tree_and_junk(tree, shape, other, client_for, users):
    mine = services.review_publish(review=services.review_start(tree=tree, by=None), by=None)
    theirs = services.review_publish(
        review=services.review_start(tree=other["tree"], by=None), by=None
    )
    draft = services.review_start(tree=tree, by=None)
    client = client_for(users["editor"])
    url = f"/api/trees/{tree.slug}/reviews/compare/"
    for query in (
        {"from": mine.pk, "to": theirs.pk},
        {"from": theirs.pk, "to": mine.pk},
        {"from": mine.pk, "to": draft.pk},
        {"from": mine.pk},
        {"from": "abc", "to": mine.pk},
        {"from": 2**70, "to": mine.pk},
        {"from": "", "to": ""},
    ):
        response = client.get(url, query)
        assert response.status_code == 400, (query, response.content)
        assert "Their" not in response.content.decode()
    # Their reviews are not visible by id either.
    assert client.get(f"/api/reviews/{theirs.pk}/").status_code == 404
    assert client.get(f"/api/reviews/{theirs.pk}/export/").status_code == 404
    assert client.get(f"/api/reviews/{mine.pk}/export/", {"format": "xml"}).status_code == 400


# --- Learnings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "surprise"},
        {"kind": "surprise", "text": "   "},
        {"kind": "surprise", "text": None},
        {"kind": "nope", "text": "x"},
        {"kind": "surprise", "text": "x\x00"},
        {"kind": "surprise", "text": "x", "node": 2**70},
        {"kind": "surprise", "text": "x", "node": "abc"},
        {"kind": "surprise", "text": "x", "evidence": [{"kind": "verdict", "id": 1}]},
    ],
)
def test_bad_learnings_are_400(tree, shape, client_for, users, body):
    before = counts()
    response = client_for(users["editor"]).post(
        f"/api/trees/{tree.slug}/learnings/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert counts() == before


def test_learnings_cannot_point_into_another_tree(tree, shape, other, client_for, users):
    theirs = services.review_start(tree=other["tree"], by=None)
    client = client_for(users["editor"])
    before = counts()
    for body in (
        {"kind": "surprise", "text": "x", "node": other["bet"].pk},
        {"kind": "surprise", "text": "x", "review": theirs.pk},
        {
            "kind": "surprise",
            "text": "x",
            "node": shape["drop"].pk,
            "evidence": [{"kind": "verdict", "id": other["verdict"].pk}],
        },
        {
            "kind": "surprise",
            "text": "x",
            "evidence": [{"kind": "observation", "id": other["observation"].pk}],
        },
    ):
        response = client.post(f"/api/trees/{tree.slug}/learnings/", body, format="json")
        assert response.status_code == 400, body
    assert counts() == before
    their_learning = services.learning_create(
        tree=other["tree"], by=None, kind="surprise", text="Their secret"
    )
    assert client.get(f"/api/learnings/{their_learning.pk}/").status_code == 404
    assert (
        client.patch(
            f"/api/learnings/{their_learning.pk}/", {"text": "mine"}, format="json"
        ).status_code
        == 404
    )
    assert "Their secret" not in client.get("/api/learnings/", {"q": "secret"}).content.decode()
    assert Learning.objects.get(pk=their_learning.pk).text == "Their secret"


@pytest.mark.parametrize(
    "body", [{"text": ""}, {"text": "   "}, {"kind": "nope"}, {"text": None}, {"text": "a\x00"}]
)
def test_bad_learning_edits_are_400(tree, client_for, users, body):
    learning = services.learning_create(tree=tree, by=None, kind="surprise", text="hm")
    response = client_for(users["editor"]).patch(
        f"/api/learnings/{learning.pk}/", body, format="json"
    )
    assert response.status_code == 400
    learning.refresh_from_db()
    assert (learning.kind, learning.text) == ("surprise", "hm")


def test_learning_search_survives_junk(tree, client_for, users):
    client = client_for(users["editor"])
    assert client.get("/api/learnings/", {"q": "x" * 10_000}).status_code == 200
    assert client.get("/api/learnings/", {"q": "%_\\'\""}).status_code == 200
    assert client.get("/api/learnings/", {"kind": "nope"}).status_code == 400
    assert client.get(f"/api/trees/{tree.slug}/learnings/", {"q": "a\x00b"}).status_code in (
        200,
        400,
    )


# --- Pages ----------------------------------------------------------------------------


@pytest.fixture
def as_role(client, users):
    def login(role: str):
        client.force_login(users[role])
        return client

    return login


def test_xss_in_titles_rationale_and_learnings_is_escaped(tree, shape, as_role, client_for, users):
    node_services.node_update(node=shape["drop"], title=XSS)
    review = services.review_start(tree=tree, by=None, title=XSS, notes=XSS)
    services.decision_create(
        node=shape["keep"], kind="persevere", rationale=XSS, by=None, review=review
    )
    services.learning_create(tree=tree, node=shape["keep"], by=None, kind="surprise", text=XSS)
    services.decision_create(
        node=shape["bet"],
        kind="persevere",
        rationale="x",
        by=None,
        evidence=[{"kind": "link", "url": "https://e.com/a", "title": XSS, "quote": XSS}],
    )
    client = as_role("viewer")
    pages = [
        f"/reviews/{review.pk}/",
        f"/trees/{tree.slug}/reviews/",
        f"/trees/{tree.slug}/decisions/",
        f"/trees/{tree.slug}/learnings/",
        "/learnings/",
        f"/nodes/{shape['keep'].pk}/",
    ]
    services.review_publish(review=review, by=None)
    pages += [f"/reviews/{review.pk}/tree/", f"/trees/{tree.slug}/reviews/compare/"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "<script>alert" not in response.content.decode(), url
        assert "<img src=x" not in response.content.decode(), url
    markdown = client.get(f"/reviews/{review.pk}/review.md").content.decode()
    assert "<script>" not in markdown
    assert "<img src=x" not in markdown


def test_decide_page_refuses_junk_without_500(tree, shape, other, as_role):
    client = as_role("editor")
    review = services.review_start(tree=tree, by=None)
    before = counts()
    url = f"/nodes/{shape['drop'].pk}/decide/"
    for query, data in (
        ("?review=abc", {"kind": "kill", "rationale": "x"}),
        ("?review=%C2%B2", {"kind": "kill", "rationale": "x"}),
        ("?review=99999999999999999999999", {"kind": "kill", "rationale": "x"}),
        ("", {"review": "abc", "kind": "kill", "rationale": "x"}),
        ("", {"kind": "kill", "rationale": "   "}),
        ("", {"kind": "kill", "rationale": "x\x00"}),
        ("", {"kind": "kill", "rationale": "x", "evidence": ["garbage"]}),
        ("", {"kind": "kill", "rationale": "x", "evidence": [f"verdict:{other['verdict'].pk}"]}),
        ("", {"kind": "pivot", "rationale": "x", "pivot_to": other["bet"].pk}),
        ("", {"kind": "pivot", "rationale": "x", "pivot_to": "abc"}),
        ("", {"kind": "boom", "rationale": "x"}),
        ("", {"kind": "kill", "rationale": "x", "link_url": "javascript:alert(1)"}),
    ):
        response = client.post(url + query, data)
        assert response.status_code in (200, 400, 404, 422), (query, data, response.status_code)
    assert counts() == before
    assert client.post(
        f"/nodes/{shape['goal'].pk}/decide/", {"kind": "kill", "rationale": "x"}
    ).status_code in (200, 400, 422)
    assert (
        client.post(
            f"/nodes/{other['bet'].pk}/decide/", {"kind": "kill", "rationale": "x"}
        ).status_code
        == 404
    )
    assert counts() == before
    assert review.pk


def test_review_pages_refuse_junk_without_500(tree, shape, other, as_role):
    client = as_role("editor")
    theirs = services.review_publish(
        review=services.review_start(tree=other["tree"], by=None), by=None
    )
    draft = services.review_start(tree=tree, by=None, title="Q1")
    for url in (
        f"/reviews/{theirs.pk}/",
        f"/reviews/{theirs.pk}/tree/",
        f"/reviews/{theirs.pk}/review.md",
        f"/reviews/{draft.pk}/tree/",
        f"/reviews/{draft.pk}/review.xml",
        f"/trees/{tree.slug}/reviews/compare/?from={theirs.pk}",
        f"/trees/{tree.slug}/reviews/compare/?from=abc&to=1",
        f"/trees/{tree.slug}/reviews/compare/?from=99999999999999999999999",
        f"/trees/{tree.slug}/learnings/?q=%00",
        "/learnings/?kind=nope",
        "/learnings/?q=%00",
        "/api/learnings/?q=%00",
        f"/trees/{tree.slug}/decisions/?q=%00",
    ):
        response = client.get(url)
        assert response.status_code in (200, 400, 404), (url, response.status_code)
    before = counts()
    for url, data in (
        (f"/reviews/{theirs.pk}/publish/", {}),
        (f"/reviews/{theirs.pk}/amend/", {"text": "a", "reason": "b"}),
        (f"/reviews/{draft.pk}/edit/", {"title": "  "}),
        (f"/reviews/{draft.pk}/edit/", {"title": "x\x00"}),
        (f"/reviews/{draft.pk}/edit/", {"title": "ok", "attendees": ["b-owner"]}),
        (f"/reviews/{draft.pk}/amend/", {"text": "a", "reason": "b"}),
        (f"/trees/{tree.slug}/reviews/", {"title": "T" * 500}),
        (
            f"/trees/{tree.slug}/learnings/",
            {"kind": "surprise", "text": "x", "node": other["bet"].pk},
        ),
        (f"/trees/{tree.slug}/learnings/", {"kind": "surprise", "text": "x", "node": "abc"}),
    ):
        response = client.post(url, data)
        assert response.status_code in (200, 302, 400, 404, 422), (url, response.status_code)
    assert counts() == before
    draft.refresh_from_db()
    assert (draft.title, draft.attendees.count()) == ("Q1", 0)


def test_a_published_reviews_learnings_are_frozen(tree, shape, client_for, as_role, users):
    """A published review is read as it was: no learning goes into it afterwards, and
    its learnings are neither changed nor deleted (API, pages, services)."""
    review = services.review_start(tree=tree, by=None)
    kept = services.learning_create(tree=tree, by=None, kind="surprise", text="Kept", review=review)
    services.review_publish(review=review, by=None)
    export_before = client_for(users["editor"]).get(f"/api/reviews/{review.pk}/export/").json()
    api = client_for(users["editor"])
    response = api.post(
        f"/api/trees/{tree.slug}/learnings/",
        {"kind": "process", "text": "Sneaked in", "review": review.pk},
        format="json",
    )
    assert response.status_code == 400
    response = api.patch(f"/api/learnings/{kept.pk}/", {"text": "Rewritten"}, format="json")
    assert response.status_code == 400
    assert api.delete(f"/api/learnings/{kept.pk}/").status_code == 400
    page = as_role("editor")
    page.post(
        f"/trees/{tree.slug}/learnings/",
        {"kind": "process", "text": "Sneaked in", "review": review.pk},
    )
    assert page.post(f"/learnings/{kept.pk}/delete/").status_code == 302
    assert list(Learning.objects.values_list("text", flat=True)) == ["Kept"]
    export_after = api.get(f"/api/reviews/{review.pk}/export/").json()
    assert export_after["learnings"] == export_before["learnings"]


def test_learning_page_with_a_junk_review_id_is_not_500(tree, as_role):
    client = as_role("editor")
    for review in ("abc", "²", "1.5"):
        response = client.post(
            f"/trees/{tree.slug}/learnings/", {"kind": "process", "text": "x", "review": review}
        )
        assert response.status_code in (200, 302, 400, 404), review


def test_deleted_nodes_keep_their_decisions_readable(tree, shape, client_for, as_role, users):
    """Deleting a decided node (and a pivot's new node) keeps every decision and leaves
    the logs, the review pages and the exports readable."""
    first = services.review_start(tree=tree, by=None)
    services.decision_create(
        node=shape["drop"],
        kind="pivot",
        rationale="Faxes",
        by=None,
        review=first,
        pivot_title="Email",
    )
    services.decision_create(
        node=shape["keep"], kind="persevere", rationale="Fine", by=None, review=first
    )
    services.learning_create(tree=tree, node=shape["keep"], by=None, kind="surprise", text="L")
    services.review_publish(review=first, by=None)
    second = services.review_start(tree=tree, by=None)
    api = client_for(users["owner"])
    for node in (Node.objects.get(title="Email"), shape["keep"], shape["drop"]):
        assert api.delete(f"/api/nodes/{node.pk}/").status_code == 204
    assert Decision.objects.count() == 2
    for url in (
        f"/api/trees/{tree.slug}/decisions/",
        f"/api/reviews/{first.pk}/",
        f"/api/reviews/{second.pk}/",
        f"/api/reviews/{first.pk}/export/?format=md",
        f"/api/trees/{tree.slug}/learnings/",
        *(f"/api/decisions/{pk}/" for pk in Decision.objects.values_list("pk", flat=True)),
    ):
        assert api.get(url).status_code == 200, url
    page = as_role("owner")
    for url in (
        f"/trees/{tree.slug}/decisions/",
        f"/reviews/{first.pk}/",
        f"/reviews/{second.pk}/",
        f"/reviews/{first.pk}/tree/",
        f"/trees/{tree.slug}/learnings/",
        f"/trees/{tree.slug}/",
    ):
        assert page.get(url).status_code == 200, url
    services.review_publish(review=second, by=None)
    assert page.get(f"/trees/{tree.slug}/reviews/compare/").status_code == 200
    assert page.get(f"/reviews/{second.pk}/").status_code == 200


def test_no_decision_on_a_killed_or_done_node(tree, shape, client_for, users):
    services.decision_create(node=shape["drop"], kind="kill", rationale="x", by=None)
    services.decision_create(node=shape["keep"], kind="done", rationale="x", by=None)
    before = counts()
    for node in (shape["drop"], shape["keep"]):
        response = decide(client_for(users["editor"]), node, kind="persevere", rationale="y")
        assert response.status_code == 400
        assert "already" in response.json()["kind"][0]
    assert counts() == before


def test_an_empty_tree_reviews_publishes_and_compares(tree, client_for, as_role, users):
    api = client_for(users["owner"])
    first = api.post(f"/api/trees/{tree.slug}/reviews/", {}, format="json").json()["id"]
    assert api.post(f"/api/reviews/{first}/publish/").status_code == 200
    second = api.post(f"/api/trees/{tree.slug}/reviews/", {}, format="json").json()["id"]
    assert api.post(f"/api/reviews/{second}/publish/").status_code == 200
    compare = f"/api/trees/{tree.slug}/reviews/compare/"
    assert api.get(compare, {"from": second, "to": first}).status_code == 200
    assert api.get(compare, {"from": first, "to": first}).status_code in (200, 400)
    page = as_role("owner")
    for url in (
        f"/reviews/{first}/",
        f"/reviews/{first}/tree/",
        f"/reviews/{first}/review.md",
        f"/reviews/{first}/review.json",
        f"/trees/{tree.slug}/reviews/compare/?from={first}&to={first}",
        f"/trees/{tree.slug}/reviews/compare/?from={first}&to={second}",
    ):
        assert page.get(url).status_code == 200, url


@pytest.mark.parametrize("role,status", [("viewer", 403), ("leadership", 403), ("outsider", 404)])
def test_readers_and_outsiders_cannot_write_through_pages(tree, shape, as_role, role, status):
    review = services.review_start(tree=tree, by=None, title="Q1")
    learning = services.learning_create(tree=tree, by=None, kind="surprise", text="hm")
    client = as_role(role)
    before = counts()
    for url, data in (
        (f"/trees/{tree.slug}/reviews/", {"title": "Mine"}),
        (f"/reviews/{review.pk}/edit/", {"title": "Mine"}),
        (f"/reviews/{review.pk}/hold/", {}),
        (f"/reviews/{review.pk}/publish/", {}),
        (f"/reviews/{review.pk}/amend/", {"text": "a", "reason": "b"}),
        (f"/nodes/{shape['drop'].pk}/decide/", {"kind": "kill", "rationale": "x"}),
        (f"/trees/{tree.slug}/learnings/", {"kind": "process", "text": "x"}),
        (f"/learnings/{learning.pk}/delete/", {}),
    ):
        response = client.post(url, data)
        assert response.status_code == status, (url, response.status_code)
    assert counts() == before
    review.refresh_from_db()
    assert (review.title, review.status) == ("Q1", "draft")


def test_download_answers_only_md_and_json(tree, as_role):
    review = services.review_start(tree=tree, by=None)
    client = as_role("viewer")
    assert client.get(f"/reviews/{review.pk}/review.md").status_code == 200
    assert client.get(f"/reviews/{review.pk}/review.json").status_code == 200
    for fmt in ("xml", "html", 'md"; filename="evil.html', "md%0AX-Evil:%201", "md%0D%0A"):
        response = client.get(f"/reviews/{review.pk}/review.{fmt}")
        assert response.status_code == 404, fmt


def test_htmx_decisions_escape_the_node_title(tree, shape, as_role):
    node_services.node_update(node=shape["drop"], title=XSS)
    node_services.node_update(node=shape["keep"], title=XSS + "2")
    review = services.review_start(tree=tree, by=None)
    client = as_role("editor")
    for node, data in (
        (shape["drop"], {"kind": "kill", "rationale": XSS}),
        (shape["keep"], {"kind": "pivot", "rationale": XSS, "pivot_title": XSS}),
        (shape["other_bet"], {"kind": "persevere", "rationale": XSS, "review": review.pk}),
        (shape["bet"], {"kind": "persevere", "rationale": " ", "review": review.pk}),
    ):
        response = client.post(f"/nodes/{node.pk}/decide/", data, HTTP_HX_REQUEST="true")
        assert response.status_code in (200, 422), node
        body = response.content.decode() + str(response.headers)
        assert "<script>alert" not in body
        assert "<img src=x" not in body


def test_a_body_over_the_upload_limit_is_refused(tree, shape, client_for, as_role, users):
    huge = "x" * 3_000_000
    before = counts()
    response = decide(client_for(users["editor"]), shape["drop"], kind="kill", rationale=huge)
    assert response.status_code in (400, 413)
    response = as_role("editor").post(
        f"/nodes/{shape['drop'].pk}/decide/", {"kind": "kill", "rationale": huge}
    )
    assert response.status_code in (400, 413)
    assert counts() == before


def test_many_evidence_links_in_one_decision(tree, shape, client_for, users):
    links = [{"kind": "link", "url": f"https://e.com/{n}", "title": str(n)} for n in range(2000)]
    response = decide(
        client_for(users["editor"]), shape["keep"], kind="persevere", rationale="x", evidence=links
    )
    assert response.status_code == 201
    assert Evidence.objects.count() == 2000
