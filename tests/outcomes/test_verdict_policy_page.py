"""The tolerance bands page of a tree: editors set them, bad input changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from outcomes import tasks
from outcomes.models import VerdictPolicy

URL = "/trees/tree/verdict-policy/"


def client_as(users, role: str | None) -> Client:
    client = Client()
    if role:
        client.force_login(users[role])
    return client


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("owner", 200),
        ("editor", 200),
        ("viewer", 403),
        ("leadership", 403),
        ("outsider", 404),
        (None, 302),
    ],
)
def test_only_editors_reach_the_form(users, tree, role, status):
    assert client_as(users, role).get(URL).status_code == status


def test_saving_the_bands_re_evaluates_the_tree(
    users, tree, monkeypatch, django_capture_on_commit_callbacks
):
    from outcomes.services import measure_create
    from valuetree.services import node_create

    measure = measure_create(
        node=node_create(tree=tree, parent=None, title="Goal"),
        name="Reorders",
        direction="increase",
        baseline_value=0,
        baseline_date="2026-01-01",
        target_value=10,
        target_date="2027-01-01",
    )
    queued = []
    monkeypatch.setattr(tasks.evaluate_measures, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(users, "editor").post(
            URL, {"on_track_percent": "10", "at_risk_percent": "25"}
        )
    assert response.status_code == 302
    policy = VerdictPolicy.objects.get(tree=tree)
    assert (policy.on_track_within, policy.at_risk_within) == (0.1, 0.25)
    assert queued == [[measure.pk]]
    page = client_as(users, "editor").get(URL).content.decode()
    assert 'value="10.0"' in page and 'value="25.0"' in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"on_track_percent": "30", "at_risk_percent": "20"}, "on-track band"),
        ({"on_track_percent": "-1", "at_risk_percent": "20"}, "greater than or equal to 0"),
        ({"on_track_percent": "5", "at_risk_percent": "abc"}, "Enter a number"),
    ],
)
def test_bad_bands_are_refused_and_change_nothing(users, tree, data, message):
    response = client_as(users, "owner").post(URL, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not VerdictPolicy.objects.exists()


def test_bands_finer_than_the_page_shows_survive_a_save_that_leaves_them(users, tree):
    # The page shows bands to 2 decimals (12.35 for 0.123456): saving it unchanged
    # wrote the rounded figure over a band set more finely through the API.
    from outcomes.services import verdict_policy_set

    verdict_policy_set(tree_id=tree.pk, on_track_within=0.123456, at_risk_within=0.3)
    page = client_as(users, "owner").get(URL).content.decode()
    assert 'value="12.35"' in page
    response = client_as(users, "owner").post(
        URL, {"on_track_percent": "12.35", "at_risk_percent": "40"}
    )
    assert response.status_code == 302
    policy = VerdictPolicy.objects.get(tree=tree)
    assert (policy.on_track_within, policy.at_risk_within) == (0.123456, 0.4)
    # A band typed anew is taken as typed.
    client_as(users, "owner").post(URL, {"on_track_percent": "12.3", "at_risk_percent": "40"})
    assert VerdictPolicy.objects.get(tree=tree).on_track_within == pytest.approx(0.123)
