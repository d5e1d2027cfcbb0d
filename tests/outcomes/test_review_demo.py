"""The demo tree's review history tells a story a new user can follow."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from outcomes.models import Decision, Learning, ValueReview
from outcomes.reviews import selectors
from valuetree.models import Node


@pytest.fixture
def demo(helix_demo):
    return helix_demo


def test_two_published_reviews_a_quarter_apart_and_a_draft(demo):
    first, second = ValueReview.objects.filter(status="published").order_by("as_of")
    assert 85 <= (second.as_of - first.as_of).days <= 95
    assert second.previous == first
    draft = ValueReview.objects.get(status="draft")
    assert draft.previous == second
    changes = second.changes
    assert [n["title"] for n in changes["killed"]] == [
        "Bottleneck alerts for shift leads",
        "Courier re-routing pilot between Leipzig and Halle",
    ]
    assert [n["title"] for n in changes["done"]] == ["Hourly analyser utilisation data product"]
    assert [n["title"] for n in changes["added"]] == ["Queue board on the lab floor"]
    assert [e["field"] for e in changes["edits"]] == ["target_value"]
    assert changes["measure_moves"], "verdicts moved between the two reviews"
    assert {d.kind for d in Decision.objects.all()} == {"persevere", "pivot", "kill", "done"}
    pivot = Decision.objects.get(kind="pivot")
    assert pivot.pivot_to == Node.objects.get(title="Queue board on the lab floor")
    kill = Decision.objects.get(kind="kill")
    assert {e.kind for e in kill.evidence.all()} >= {"link", "verdict"}
    assert Learning.objects.count() == 4
    data = selectors.review_data(ValueReview.objects.select_related("tree").get(pk=draft.pk))
    assert data["needed"], "the draft has items waiting for a decision"


def test_loading_again_adds_no_reviews(demo, tmp_path):
    call_command("load_demo_metrics")
    assert ValueReview.objects.count() == 3


def test_the_demo_review_pages_render(demo, client):
    from valuetree.models import Membership

    owner = Membership.objects.filter(role="owner").first().user
    client.force_login(owner)
    for review in ValueReview.objects.all():
        response = client.get(f"/reviews/{review.pk}/")
        assert response.status_code == 200
        assert review.title in response.content.decode()
    second = ValueReview.objects.filter(status="published").order_by("as_of").last()
    assert "Courier re-routing" in client.get(f"/reviews/{second.pk}/tree/").content.decode()
    node = Node.objects.get(title="Queue board on the lab floor")
    assert "Pivoted from" in client.get(f"/nodes/{node.pk}/").content.decode()


def test_the_demo_tree_has_a_review_schedule_running_soon(demo):
    from django.utils import timezone

    from outcomes.reports.models import ReviewSchedule
    from outcomes.reports.services import recipients

    schedule = ReviewSchedule.objects.get(tree__slug="helix-diagnostics")
    assert schedule.channels == ["email"] and schedule.attach_pdf
    assert (schedule.next_run_at - timezone.now()).total_seconds() < 5 * 60
    assert "board@helix.example" in recipients(schedule)
    assert len(recipients(schedule)) >= 2
