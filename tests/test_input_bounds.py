"""Missing is not null, and every number is bounded by what it means (issue 14 §5).

A number out of its range is a 400 (API) or a field error (page) that names the field,
and the database refuses it too, so no later read (roll-up, tree page, dashboard) meets
a number it cannot add up.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from outcomes import services as outcome_services
from outcomes.models import MAX_ABS_VALUE, Measure, Metric, Observation
from tests.factories import make_metric
from valuetree import services
from valuetree.models import RESERVED_TREE_SLUGS, Membership, Node

HUGE = 1.7e308


@pytest.fixture
def goal(tree):
    return services.node_create(tree=tree, title="Faster results")


@pytest.fixture
def editor(users, client_for):
    return client_for(users["editor"])


def measure_body(**overrides: object) -> dict:
    return {
        "name": "Wait time",
        "direction": "decrease",
        "baseline_value": 40,
        "baseline_date": "2026-01-01",
        "target_value": 20,
        "target_date": "2027-01-01",
    } | overrides


@pytest.mark.django_db
class TestMissingIsNotNull:
    def test_a_node_without_parent_is_a_goal(self, tree, editor):
        response = editor.post(f"/api/trees/{tree.slug}/nodes/", {"title": "Grow Nordic revenue"})
        assert response.status_code == 201, response.content
        assert response.json()["kind"] == "goal"
        assert response.json()["parent"] is None

    def test_the_service_takes_a_missing_parent_as_a_goal(self, tree):
        assert services.node_create(tree=tree, title="A goal").kind == "goal"

    def test_patch_of_a_member_without_role_keeps_the_role(self, users, tree, client_for):
        membership = Membership.objects.get(tree=tree, user=users["editor"])
        response = client_for(users["owner"]).patch(
            f"/api/trees/{tree.slug}/members/{membership.pk}/", {}
        )
        assert response.status_code == 200, response.content
        assert response.json()["role"] == "editor"
        membership.refresh_from_db()
        assert membership.role == "editor"


@pytest.mark.django_db
class TestNodeNumbers:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("weight", HUGE),
            ("weight", 1000.5),
            ("weight", -1),
            ("confidence", 101),
            ("confidence", -1),
            ("investment_amount", "-1.00"),
            ("expected_value_amount", "-0.01"),
            ("investment_amount", "1e20"),
            ("investment_amount", "1.001"),
        ],
    )
    def test_out_of_range_is_a_400_naming_the_field(self, goal, editor, field, value):
        response = editor.patch(f"/api/nodes/{goal.pk}/", {field: value})
        assert response.status_code == 400, response.content
        assert field in response.json()
        goal.refresh_from_db()
        assert goal.weight == 1.0

    def test_the_bounds_themselves_are_accepted(self, goal, editor):
        body = {
            "weight": 1000,
            "confidence": 100,
            "investment_amount": "99999999999999.99",
            "expected_value_amount": "0.00",
        }
        response = editor.patch(f"/api/nodes/{goal.pk}/", body)
        assert response.status_code == 200, response.content
        assert response.json()["weight"] == 1000

    def test_create_refuses_a_huge_weight_and_stores_nothing(self, tree, editor):
        response = editor.post(f"/api/trees/{tree.slug}/nodes/", {"title": "G", "weight": HUGE})
        assert response.status_code == 400
        assert "weight" in response.json()
        assert not Node.objects.filter(tree=tree).exists()

    def test_position_is_bounded(self, tree, editor):
        response = editor.post(f"/api/trees/{tree.slug}/nodes/", {"title": "G", "position": 2**63})
        assert response.status_code == 400
        assert "position" in response.json()

    def test_amounts_are_decimal_strings_with_two_places(self, goal, editor):
        response = editor.patch(f"/api/nodes/{goal.pk}/", {"investment_amount": "1250.5"})
        assert response.status_code == 200, response.content
        assert response.json()["investment_amount"] == "1250.50"

    def test_the_amount_is_documented_as_a_decimal_string(self, client):
        schema = client.get("/api/schema/?format=json").json()
        amount = schema["components"]["schemas"]["Node"]["properties"]["investment_amount"]
        assert amount["type"] == "string"
        assert amount["format"] == "decimal"
        weight = schema["components"]["schemas"]["Node"]["properties"]["weight"]
        assert (weight["minimum"], weight["maximum"]) == (0, 1000)

    def test_the_page_form_refuses_a_huge_weight(self, users, goal, client):
        client.force_login(users["editor"])
        response = client.post(
            f"/nodes/{goal.pk}/edit/",
            {"title": goal.title, "weight": "1.7e308", "status": "active"},
        )
        assert response.status_code in (200, 400, 422)
        goal.refresh_from_db()
        assert goal.weight == 1.0

    def test_the_database_refuses_a_huge_weight(self, goal):
        with pytest.raises(IntegrityError), transaction.atomic():
            Node.objects.filter(pk=goal.pk).update(weight=HUGE)

    def test_the_database_refuses_a_negative_amount(self, goal):
        with pytest.raises(IntegrityError), transaction.atomic():
            Node.objects.filter(pk=goal.pk).update(investment_amount=-1)


@pytest.mark.django_db
class TestMeasureNumbers:
    @pytest.mark.parametrize(
        "overrides",
        [
            {"weight": HUGE},
            {"weight": -0.5},
            {"baseline_value": HUGE},
            {"target_value": -HUGE},
            {"target_value": MAX_ABS_VALUE * 10},
        ],
    )
    def test_out_of_range_is_a_400(self, goal, editor, overrides):
        response = editor.post(f"/api/nodes/{goal.pk}/measures/", measure_body(**overrides))
        assert response.status_code == 400, response.content
        assert set(overrides) <= set(response.json())
        assert not Measure.objects.exists()

    def test_values_at_the_bound_are_accepted(self, goal, editor):
        body = measure_body(baseline_value=-MAX_ABS_VALUE, target_value=MAX_ABS_VALUE)
        body["direction"] = "increase"
        response = editor.post(f"/api/nodes/{goal.pk}/measures/", body)
        assert response.status_code == 201, response.content

    def test_the_database_refuses_a_huge_target(self, goal):
        measure = outcome_services.measure_create(
            node=goal,
            name="m",
            direction="increase",
            baseline_value=0,
            baseline_date=dt.date(2026, 1, 1),
            target_value=1,
            target_date=dt.date(2027, 1, 1),
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            Measure.objects.filter(pk=measure.pk).update(target_value=HUGE)


@pytest.mark.django_db
class TestObservationAndScheduleNumbers:
    @pytest.mark.parametrize("value", [HUGE, -1e16, "1e300"])
    def test_a_pushed_value_beyond_the_bound_is_a_400(self, tree, editor, value):
        metric = make_metric(tree)
        response = editor.post(
            f"/api/metrics/{metric.pk}/observations/", {"period": "2026-01-01", "value": value}
        )
        assert response.status_code == 400, response.content
        assert not Observation.objects.exists()

    def test_the_database_refuses_a_huge_observation(self, tree):
        metric = make_metric(tree)
        with pytest.raises(IntegrityError), transaction.atomic():
            Observation.objects.create(
                metric=metric,
                period_start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                value=HUGE,
                pulled_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("expected_frequency", "999999999 00:00:00"),
            ("expected_frequency", "3661 00:00:00"),
            ("expected_frequency", "00:00:01"),
        ],
    )
    def test_durations_are_bounded(self, tree, editor, field, value):
        metric = make_metric(tree)
        response = editor.patch(f"/api/metrics/{metric.pk}/", {field: value})
        assert response.status_code == 400, response.content
        assert field in response.json()

    def test_the_database_refuses_a_year_long_interval(self, tree):
        metric = make_metric(
            tree,
            kind="http_json",
            config={"url": "https://example.org"},
            query="$.v",
            schedule_interval=dt.timedelta(hours=1),
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            Metric.objects.filter(pk=metric.pk).update(schedule_interval=dt.timedelta(days=400))


@pytest.mark.django_db
@pytest.mark.parametrize("digit", ["²", "٣"])
def test_a_non_ascii_digit_as_an_id_is_a_404_not_a_500(tree, users, client, digit):
    """str.isdigit() takes "²" and "٣"; int() and the ORM do not."""
    client.force_login(users["editor"])
    assert client.get(f"/trees/{tree.slug}/nodes/new/", {"parent": digit}).status_code == 404
    assert client.post(f"/trees/{tree.slug}/trash/", {"item": digit}).status_code == 404
    response = client.post(
        "/api/metrics/", {"source": digit, "name": "Wait"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert not Metric.objects.filter(name="Wait").exists()


@pytest.mark.django_db
class TestReservedTreeSlugs:
    """A tree named "new" had its page under the create form (/trees/new/); one named
    "import" had its API address under the import action (GET: 405). Both could be
    made through the API, the form and an import, and then never be reached."""

    @pytest.mark.parametrize("slug", sorted(RESERVED_TREE_SLUGS))
    def test_every_entry_point_refuses_a_reserved_slug(self, slug, users, client_for, client):
        api = client_for(users["owner"])
        created = api.post("/api/trees/", {"slug": slug, "name": "N", "vision": "V"})
        assert created.status_code == 400
        assert "reserved" in str(created.json()["slug"])
        document = f"version: 1\nslug: {slug}\nname: N\nvision: V\n".encode()
        imported = api.post("/api/trees/import/", document, content_type="application/yaml")
        assert imported.status_code == 400
        assert "reserved" in str(imported.json()["errors"])
        renamed = api.post(
            "/api/trees/import/?slug=" + slug,
            document.replace(slug.encode(), b"t"),
            content_type="application/yaml",
        )
        assert renamed.status_code == 400
        client.force_login(users["owner"])
        page = client.post("/trees/new/", {"name": "N", "slug": slug, "vision": "V"})
        assert page.status_code == 400
        assert "reserved" in page.content.decode()
        assert not services.ValueTree.objects.filter(slug=slug).exists()

    def test_a_tree_is_not_renamed_to_a_reserved_slug(self, tree, users, client_for):
        response = client_for(users["owner"]).patch(f"/api/trees/{tree.slug}/", {"slug": "new"})
        assert response.status_code == 400
        tree.refresh_from_db()
        assert tree.slug == "tree"
