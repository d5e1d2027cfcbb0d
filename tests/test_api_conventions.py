"""The API's conventions (valuetree/openapi.py): lists are paginated, filters apply to
the list only and are validated alike everywhere, errors are documented with their
shapes, and every piece of evidence a verdict names can be read (issue 14 §7)."""

from __future__ import annotations

import pytest

from outcomes import evaluation
from outcomes.models import Verdict
from outcomes.pulling import observations_push
from outcomes.services import measure_create
from tests.factories import make_metric
from valuetree import services


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return response.json()


@pytest.fixture
def product(users, db):
    lab = services.domain_create(name="Lab", slug="lab")
    return services.data_product_create(
        slug="volumes",
        name="Test volumes",
        domain=lab,
        by=users["owner"],
        stage="live",
        output_ports=[{"name": "daily", "kind": "table"}],
    )


def test_the_schema_is_yaml_by_default_and_json_on_request(client):
    assert client.get("/api/schema/").content.startswith(b"openapi: 3")
    assert client.get("/api/schema/?format=yaml").content.startswith(b"openapi: 3")
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3")
    assert client.get("/api/schema/?format=xml").status_code == 404


@pytest.mark.django_db
def test_every_operation_documents_its_errors_with_their_shapes(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for code in ("400", "401", "403", "404", "default"):
                assert code in responses, (method, path, code)
    assert schema["components"]["schemas"]["ErrorDetail"]["required"] == ["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("/api/data-products/{slug}/", "DataProduct"),
        ("/api/metric-sources/{id}/", "MetricSource"),
        ("/api/metrics/{id}/pull-runs/", "PullRun"),
    ],
)
def test_fields_that_may_be_null_are_nullable(schema, path, component):
    properties = schema["components"]["schemas"][component]["properties"]
    field = {"DataProduct": "duplicate_of", "MetricSource": "owner", "PullRun": "user"}[component]
    assert properties[field].get("nullable") is True


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["history/", "similar/", "interests/", "links/", "transitions/"])
def test_lists_of_a_product_are_paginated_as_documented(users, client_for, schema, product, suffix):
    response = client_for(users["viewer"]).get(f"/api/data-products/volumes/{suffix}")
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"count", "next", "previous", "results"}
    documented = schema["paths"][f"/api/data-products/{{slug}}/{suffix}"]["get"]["responses"]
    ref = documented["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.split("/")[-1].startswith("Paginated")


@pytest.mark.django_db
def test_list_filters_do_not_leak_onto_a_product_s_actions(users, client_for, product):
    viewer = client_for(users["viewer"])
    assert viewer.get("/api/data-products/volumes/links/?stage=discovery").status_code == 200
    assert viewer.get("/api/data-products/volumes/?stage=discovery").status_code == 200
    listed = viewer.get("/api/data-products/?stage=discovery").json()
    assert listed["count"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["stage=bogus", "stage__in=live,bogus", "domain=nowhere", "domain__slug=nowhere"],
)
def test_the_list_refuses_unknown_filter_values_like_the_board(users, client_for, product, query):
    viewer = client_for(users["viewer"])
    response = viewer.get(f"/api/data-products/?{query}")
    assert response.status_code == 400, response.content
    assert query.split("=")[0] in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["stage=bogus", "stage=live", "domain=nowhere"])
def test_the_board_refuses_unknown_filter_values(users, client_for, product, query):
    response = client_for(users["viewer"]).get(f"/api/data-products/board/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


@pytest.mark.django_db
def test_every_observation_a_verdict_names_can_be_read(users, tree, client_for):
    goal = services.node_create(tree=tree, title="Goal")
    metric = make_metric(tree)
    measure = measure_create(
        node=goal,
        name="Volume",
        direction="increase",
        baseline_value=0,
        baseline_date="2026-01-01",
        target_value=10,
        target_date="2026-12-31",
        metric=metric,
    )
    observations_push(
        metric=metric, raw_points=[("2026-02-01", 2), ("2026-03-01", 3)], trigger="push"
    )
    evaluation.measures_evaluate(measure_ids=[measure.pk])
    verdict = Verdict.objects.get(measure=measure, is_current=True)
    assert verdict.observation_ids

    viewer = client_for(users["viewer"])
    named = viewer.get(f"/api/verdicts/?measure={measure.pk}").json()["results"][0]
    for observation_id in named["observation_ids"]:
        response = viewer.get(f"/api/observations/{observation_id}/")
        assert response.status_code == 200
        assert response.json()["id"] == observation_id
        assert response.json()["metric"] == metric.pk
    listed = viewer.get(f"/api/observations/?verdict={verdict.pk}").json()["results"]
    assert sorted(o["id"] for o in listed) == sorted(verdict.observation_ids)
    # Evidence in a tree one may not read stays hidden.
    outsider = client_for(users["outsider"])
    assert outsider.get(f"/api/observations/{verdict.observation_ids[0]}/").status_code == 404
    assert outsider.get(f"/api/observations/?verdict={verdict.pk}").json()["count"] == 0
    # The metric's own list carries the ids too.
    by_metric = viewer.get(f"/api/metrics/{metric.pk}/observations/").json()["results"]
    assert {o["id"] for o in by_metric} >= set(verdict.observation_ids)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": 0}, "description"),
        ({"weight": True}, "weight"),
        ({"weight": "2"}, "weight"),
        ({"confidence": 50.0}, "confidence"),
        ({"investment_amount": 10.5}, "investment_amount"),
        ({"owner": 7}, "owner"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused(users, tree, client_for, body, field):
    goal = services.node_create(tree=tree, title="Goal")
    response = client_for(users["editor"]).patch(f"/api/nodes/{goal.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]


@pytest.mark.django_db
def test_an_id_sent_as_text_is_refused(users, tree, client_for):
    goal = services.node_create(tree=tree, title="Goal")
    response = client_for(users["editor"]).post(
        f"/api/trees/{tree.slug}/nodes/", {"title": "Bet", "parent": str(goal.pk)}, format="json"
    )
    assert response.status_code == 400
    assert "parent" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "/api/metrics/?is_active=null",
        "/api/metrics/?is_active=1",
        "/api/metric-sources/?kind=",
        "/api/nodes/?parent__isnull=yes",
        "/api/notifications/?unread=null",
        "/api/verdicts/?node=1.5",
    ],
)
def test_query_values_are_read_strictly(users, client_for, query):
    response = client_for(users["viewer"]).get(query)
    assert response.status_code == 400, response.content


@pytest.mark.django_db
def test_pages_and_unknown_routes_answer_json(users, client_for):
    viewer = client_for(users["viewer"])
    for url in ("/api/trees/?page=", "/api/trees/?page=0", "/api/no/such/route.x/"):
        response = viewer.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert "detail" in response.json()
    assert viewer.get("/api/trees/?is_active=true&page=1").status_code == 200
