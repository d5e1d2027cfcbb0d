from __future__ import annotations

import pytest

from outcomes.models import Measure
from valuetree import services

VALID = {
    "name": "Turnaround",
    "unit": "hours",
    "direction": "decrease",
    "baseline_value": 48,
    "baseline_date": "2026-01-01",
    "target_value": 24,
    "target_date": "2027-01-01",
}


@pytest.fixture
def goal(tree):
    return services.node_create(tree=tree, parent=None, title="Goal")


@pytest.mark.django_db
class TestMeasureApi:
    def test_create_list_update_delete(self, users, client_for, goal):
        editor = client_for(users["editor"])
        created = editor.post(f"/api/nodes/{goal.pk}/measures/", VALID)
        assert created.status_code == 201, created.content
        measure_id = created.json()["id"]
        listed = client_for(users["viewer"]).get(f"/api/nodes/{goal.pk}/measures/").json()
        assert [m["name"] for m in listed] == ["Turnaround"]
        updated = editor.patch(f"/api/measures/{measure_id}/", {"is_guardrail": True})
        assert updated.json()["is_guardrail"] is True
        assert editor.delete(f"/api/measures/{measure_id}/").status_code == 204
        assert not Measure.objects.exists()

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"direction": "increase"}, "target_value"),  # target 24 below baseline 48
            ({"target_date": "2025-06-01"}, "target_date"),  # before the baseline date
            ({"direction": "sideways"}, "direction"),
            ({"baseline_value": "lots"}, "baseline_value"),
            ({"weight": -1}, "weight"),
            ({"name": ""}, "name"),
        ],
    )
    def test_invalid_measure_is_refused_and_not_stored(
        self, users, client_for, goal, changes, field
    ):
        response = client_for(users["editor"]).post(
            f"/api/nodes/{goal.pk}/measures/", {**VALID, **changes}
        )
        assert response.status_code == 400
        body = response.json()
        assert field in body or ("non_field_errors" in body and field == "__all__"), body
        assert not Measure.objects.exists()

    def test_another_trees_metric_answers_like_a_missing_one(self, users, client_for, goal):
        """No probing: a metric of a tree the caller may not see (or may, but another
        tree's) gets the very answer an id that does not exist gets."""
        from tests.factories import make_metric, make_role_users, make_tree

        hidden = make_tree(make_role_users(prefix="x"), slug="hidden", name="Hidden")
        elsewhere = make_metric(hidden, kind="push", name="Secret metric")
        editor = client_for(users["editor"])
        url = f"/api/nodes/{goal.pk}/measures/"

        other = editor.post(url, {**VALID, "metric": elsewhere.pk})
        missing = editor.post(url, {**VALID, "metric": elsewhere.pk + 1000})
        assert (other.status_code, other.json()) == (missing.status_code, missing.json())
        assert missing.json() == {"metric": ["Choose a metric of this tree."]}
        assert not Measure.objects.exists()

    def test_non_finite_values_are_refused(self, users, client_for, goal):
        response = client_for(users["editor"]).post(
            f"/api/nodes/{goal.pk}/measures/",
            '{"name": "x", "direction": "increase", "baseline_value": NaN, "baseline_date": "2026-01-01", "target_value": Infinity, "target_date": "2027-01-01"}',
            content_type="application/json",
        )
        assert response.status_code == 400
        assert not Measure.objects.exists()

    def test_filter_by_tree(self, users, client_for, goal, tree):
        client_for(users["editor"]).post(f"/api/nodes/{goal.pk}/measures/", VALID)
        response = client_for(users["viewer"]).get(f"/api/measures/?node__tree__slug={tree.slug}")
        assert [m["name"] for m in response.json()["results"]] == ["Turnaround"]
