"""`manage.py load_demo`: what it loads, that it is idempotent, and that it leaves
edits to the demo tree alone."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from outcomes.models import Measure
from valuetree import interchange, services
from valuetree.management.commands import load_demo as command
from valuetree.management.commands.load_demo import GLOSSARY_FILE
from valuetree.models import (
    DataProduct,
    DataProductEmbedding,
    DataProductLink,
    Domain,
    GlossaryTerm,
    Membership,
    Node,
    OutputPort,
    ValueTree,
)

User = get_user_model()
SLUG = "helix-diagnostics"
PASSWORD = "valuetree-demo"
HYPOTHESIS = re.compile(r"^We believe that .+ will result in .+; we will know when .+\.$", re.S)


@pytest.fixture(autouse=True)
def no_password_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)


def load(**kwargs: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("load_demo", stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


def demo_tree() -> ValueTree:
    return ValueTree.objects.get(slug=SLUG)


def row_counts() -> dict[str, int]:
    """Every table's row count, history tables included: a repeated load writes nothing."""
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.app_label in {"auth", "valuetree", "outcomes"}
    }


def snapshot() -> dict[str, Any]:
    return {
        "counts": row_counts(),
        "export": interchange.tree_export(tree=demo_tree()),
        "users": sorted(
            User.objects.values_list("username", "password", "email", "is_staff", "last_login")
        ),
        "ports": sorted(OutputPort.objects.values_list("id", "data_product__slug", "name")),
        "products": sorted(DataProduct.objects.values_list("slug", "stage", "updated_at")),
        "memberships": sorted(Membership.objects.values_list("id", "user__username", "role")),
        "leaders": sorted(User.objects.filter(groups__name="Leadership").values_list("username")),
    }


@pytest.mark.django_db
class TestWhatItLoads:
    def test_the_tree_has_three_goals_six_bets_fourteen_initiatives(self):
        load()
        kinds = list(Node.objects.filter(tree=demo_tree()).values_list("kind", flat=True))
        assert ValueTree.objects.count() == 1
        assert (kinds.count("goal"), kinds.count("bet"), kinds.count("initiative")) == (3, 6, 14)
        bets_per_goal = [goal.children.count() for goal in Node.objects.filter(kind="goal")]
        initiatives_per_bet = [bet.children.count() for bet in Node.objects.filter(kind="bet")]
        assert bets_per_goal == [2, 2, 2]
        assert min(initiatives_per_bet) >= 2

    def test_measures_have_baselines_and_targets_in_2025_to_2028(self):
        load()
        measures = list(Measure.objects.filter(node__tree=demo_tree()))
        assert len(measures) == 29
        assert {m.direction for m in measures} == {"increase", "decrease", "at_least", "at_most"}
        assert {m.kind for m in measures} == {"leading", "lagging"}
        assert sum(m.is_guardrail for m in measures) == 4
        for m in measures:
            assert dt.date(2025, 1, 1) <= m.baseline_date < m.target_date <= dt.date(2028, 12, 31)
            assert m.unit
            if m.direction == "increase":
                assert m.target_value > m.baseline_value, m.name
            if m.direction == "decrease":
                assert m.target_value < m.baseline_value, m.name
        # Every goal, bet and initiative says how its success is measured.
        assert not Node.objects.filter(tree=demo_tree(), measures__isnull=True).exists()

    def test_bets_and_initiatives_carry_hypotheses_investments_and_confidence(self):
        load()
        nodes = Node.objects.filter(tree=demo_tree())
        assert set(nodes.filter(kind="goal").values_list("hypothesis", flat=True)) == {""}
        work = list(nodes.exclude(kind="goal"))
        assert len(work) == 20
        for node in work:
            assert HYPOTHESIS.match(node.hypothesis), node.title
            assert node.investment_amount > 0
            assert node.investment_unit in {"EUR", "person-weeks"}
            assert node.expected_value_amount > 0
            assert node.expected_value_unit == "EUR/year"
            assert 0 <= node.confidence <= 100
            assert node.owner is not None
            assert node.accountable is not None
        statuses = sorted(nodes.filter(kind="initiative").values_list("status", flat=True))
        assert statuses.count("killed") == 2
        assert {"proposed", "active", "done", "killed"} <= set(statuses)

    def test_data_products_span_domains_stages_and_types(self):
        load()
        products = DataProduct.objects.all()
        assert products.count() == 15
        assert Domain.objects.count() == 6
        assert products.values("domain").distinct().count() == 6
        assert set(products.values_list("stage", flat=True)) == {
            "discovery",
            "design",
            "build",
            "live",
            "deprecated",
            "retired",
        }
        assert set(products.values_list("product_type", flat=True)) == {
            "source_aligned",
            "aggregate",
            "consumer_aligned",
        }
        for product in products:
            assert 1 <= product.output_ports.count() <= 3, product.slug
        assert OutputPort.objects.count() == 23
        assert set(OutputPort.objects.values_list("kind", flat=True)) == {
            "table",
            "api",
            "stream",
            "file",
            "dashboard",
        }
        assert OutputPort.objects.get(
            data_product__slug="lab-sample-events", name="events-stream"
        ).location == ("kafka://lab.sample-events.v2")

    def test_data_products_are_linked_to_the_work_they_serve(self):
        load()
        links = DataProductLink.objects.filter(node__tree=demo_tree())
        assert links.count() == 28
        assert set(links.values_list("role", flat=True)) == {"produces", "uses"}
        assert set(
            links.filter(data_product__slug="lab-sample-events").values_list("node__title", "role")
        ) == {
            ("Real-time sample tracking across the hub laboratories", "produces"),
            ("Publish sample lifecycle events as a data product", "produces"),
            ("Bottleneck alerts for shift leads", "uses"),
            ("Courier re-routing pilot between Leipzig and Halle", "uses"),
            ("Reagent demand forecast from test volumes", "uses"),
        }

    def test_the_default_glossary_is_loaded_and_used_by_the_duplicate_score(self):
        load()
        terms = yaml.safe_load(GLOSSARY_FILE.read_text())["terms"]
        assert GlossaryTerm.objects.count() == len(terms)
        assert "client" in GlossaryTerm.objects.get(name="customer").synonyms
        # The demo's products are embedded with the glossary's terms (the worker does
        # it after commit; this test's transaction never commits).
        services.data_product_embeddings_refresh()
        assert any(row.term_ids for row in DataProductEmbedding.objects.all())

    def test_users_hold_every_role(self):
        load()
        roles: dict[str, set[str]] = {}
        for username, role in Membership.objects.filter(tree=demo_tree()).values_list(
            "user__username", "role"
        ):
            roles.setdefault(role, set()).add(username)
        assert roles == {
            "owner": {"demo", "mreyes"},
            "editor": {"tokafor", "lchen", "svogel", "pnair", "mkowalski"},
            "viewer": {"jmuller", "afischer", "kosei"},
        }
        leaders = set(
            Group.objects.get(name="Leadership").user_set.values_list("username", flat=True)
        )
        assert leaders == {"ehartmann", "rbianchi", "ywatanabe"}
        assert User.objects.count() == 13
        assert set(User.objects.values_list("email", flat=True)) >= {
            "demo@helix-diagnostics.example"
        }

    def test_it_prints_the_login_and_the_other_users(self):
        out, _ = load()
        assert "Demo ready: open http://127.0.0.1:8000/ and log in as demo / valuetree-demo" in out
        assert "3 goals, 6 bets, 14 initiatives" in out
        assert re.search(r"tokafor\s+editor\s+in the demo tree\s+Tunde Okafor", out)
        assert re.search(r"ehartmann\s+leadership\s+reads all trees\s+Elisabeth Hartmann", out)

    def test_another_url_is_printed(self):
        out, _ = load(url="https://valuetree.example.org/")
        assert "open https://valuetree.example.org/ and log in as demo" in out


@pytest.mark.django_db
class TestIdempotence:
    def test_a_second_run_writes_nothing(self):
        load()
        before = snapshot()
        out, _ = load()
        assert snapshot() == before
        assert "Changes: none, everything was already loaded." in out
        assert "already there, left as it is" in out

    def test_a_users_edits_to_the_demo_tree_survive(self):
        load()
        tree = demo_tree()
        killed = Node.objects.get(tree=tree, title="Bottleneck alerts for shift leads")
        services.node_update(node=killed, status="killed", title="Bottleneck alerts (stopped)")
        services.node_delete(
            node=Node.objects.get(tree=tree, title="Manual reorder dashboard on the data lake")
        )
        services.tree_update(tree=tree, name="Our diagnostics tree")
        jonas = User.objects.get(username="jmuller")
        services.membership_set(tree=tree, user=jonas, role="editor")
        services.membership_remove(membership=Membership.objects.get(user__username="kosei"))
        edited = snapshot()

        load()

        assert snapshot() == edited
        assert Node.objects.get(pk=killed.pk).title == "Bottleneck alerts (stopped)"
        assert Node.objects.filter(tree=tree, kind="initiative").count() == 13
        assert demo_tree().name == "Our diagnostics tree"
        assert Membership.objects.get(tree=tree, user=jonas).role == "editor"
        assert not Membership.objects.filter(user__username="kosei").exists()

    def test_an_edited_glossary_term_keeps_its_edits_and_a_deleted_one_comes_back(self):
        load()
        customer = GlossaryTerm.objects.get(name="customer")
        services.glossary_term_update(term=customer, definition="Whoever pays us.")
        GlossaryTerm.objects.get(name="invoice").delete()
        out, _ = load()
        assert GlossaryTerm.objects.get(name="customer").definition == "Whoever pays us."
        assert GlossaryTerm.objects.filter(name="invoice").exists()
        assert "1 glossary term created" in out

    def test_the_glossary_is_checked_against_one_index_not_one_per_term(self, monkeypatch):
        # Each term was created on its own, reading every term's forms again: loading
        # the default glossary was quadratic (542 terms: 10 s of a 13 s load).
        reads: list[None] = []
        original = services.GlossaryForms.load

        def counted() -> services.GlossaryForms:
            reads.append(None)
            return original()

        monkeypatch.setattr(services.GlossaryForms, "load", counted)
        load()
        assert GlossaryTerm.objects.count() == len(
            yaml.safe_load(GLOSSARY_FILE.read_text())["terms"]
        )
        assert len(reads) == 1

    def test_a_deleted_demo_tree_is_imported_again(self):
        load()
        services.tree_delete(tree=demo_tree())
        out, _ = load()
        assert Node.objects.filter(tree=demo_tree()).count() == 23
        assert Membership.objects.filter(tree=demo_tree()).count() == 10
        assert "9 memberships created" in out

    def test_a_deleted_demo_user_comes_back_with_its_role(self):
        load()
        User.objects.get(username="lchen").delete()
        load()
        assert Membership.objects.get(tree=demo_tree(), user__username="lchen").role == "editor"

    def test_data_products_are_upserted_to_the_demo_content(self):
        load()
        product = DataProduct.objects.get(slug="ai-triage-scores")
        services.data_product_update(
            product=product, stage="live", output_ports=[{"name": "x", "kind": "file"}]
        )
        load()
        product.refresh_from_db()
        assert product.stage == "design"
        assert list(product.output_ports.values_list("name", "kind", "location")) == [
            ("triage-api", "api", "https://data.helix-diagnostics.example/pathology/triage/v1")
        ]
        assert DataProduct.objects.count() == 15

    def test_a_bad_demo_file_writes_nothing(self, monkeypatch, tmp_path: Path):
        bad = tmp_path / "tree.yaml"
        bad.write_text(command.TREE_FILE.read_text().replace("kind: lagging", "kind: sideways"))
        monkeypatch.setattr(command, "TREE_FILE", bad)
        before = row_counts()
        with pytest.raises(CommandError, match=r'"sideways" is not a valid choice'):
            load()
        assert row_counts() == before


@pytest.mark.django_db
class TestLogin:
    def test_the_demo_login_authenticates_and_sees_the_tree_in_the_api(self):
        load()
        assert authenticate(username="demo", password=PASSWORD) == User.objects.get(username="demo")
        client = APIClient()
        assert client.login(username="demo", password=PASSWORD)
        response = client.get("/api/trees/")
        assert response.status_code == 200
        [tree] = response.json()["results"]
        assert (tree["slug"], tree["caller_role"]) == (SLUG, "owner")
        assert (tree["goal_count"], tree["bet_count"], tree["initiative_count"]) == (3, 6, 14)

    @pytest.mark.parametrize(
        ("username", "role"),
        [
            ("mreyes", "owner"),
            ("svogel", "editor"),
            ("kosei", "viewer"),
            ("rbianchi", "leadership"),
        ],
    )
    def test_every_demo_user_reads_the_tree_in_their_role(self, username, role):
        load()
        client = APIClient()
        assert client.login(username=username, password=PASSWORD)
        [tree] = client.get("/api/trees/").json()["results"]
        assert (tree["slug"], tree["caller_role"]) == (SLUG, role)

    def test_the_password_comes_from_demo_password(self, monkeypatch):
        monkeypatch.setenv("DEMO_PASSWORD", "correct-horse-battery")
        out, err = load()
        assert authenticate(username="demo", password="correct-horse-battery") is not None
        assert authenticate(username="demo", password=PASSWORD) is None
        # A password chosen by the operator is not echoed into logs.
        assert "correct-horse-battery" not in out + err
        assert "log in as demo / the password in DEMO_PASSWORD" in out

    def test_a_changed_password_is_reset_so_the_printed_login_works(self):
        load()
        demo = User.objects.get(username="demo")
        demo.set_password("forgotten")
        demo.save()
        load()
        assert authenticate(username="demo", password=PASSWORD) == demo

    def test_without_debug_the_default_password_is_warned_about(self, settings):
        settings.DEBUG = False
        out, err = load()
        assert "DEMO_PASSWORD is not set" in err
        assert "Demo ready" in out

    def test_with_debug_there_is_no_warning(self, settings):
        settings.DEBUG = True
        _, err = load()
        assert err == ""


@pytest.mark.django_db
class TestRefusals:
    def test_a_typo_in_the_organisation_file_is_named(self, monkeypatch, tmp_path: Path):
        bad = tmp_path / "organisation.yaml"
        text = command.ORGANISATION_FILE.read_text()
        bad.write_text(text.replace("    stage: design\n", "    stage: desing\n", 1))
        monkeypatch.setattr(command, "ORGANISATION_FILE", bad)
        with pytest.raises(CommandError) as error:
            load()
        assert str(error.value) == (
            f'{bad} is invalid: data_products[6].stage: "desing" is not a valid choice.'
        )
        assert not User.objects.exists()

    def test_an_unknown_key_is_refused(self, monkeypatch, tmp_path: Path):
        bad = tmp_path / "organisation.yaml"
        text = command.ORGANISATION_FILE.read_text()
        bad.write_text(text.replace("    role: viewer\n", "    role: viewer\n    team: QA\n", 1))
        monkeypatch.setattr(command, "ORGANISATION_FILE", bad)
        with pytest.raises(CommandError, match=r"users\[7\]\.team: Unknown field\.$"):
            load()

    def test_a_clashing_domain_rolls_everything_back(self):
        services.domain_create(name="Imaging", slug="radiology-and-imaging")
        before = row_counts()
        with pytest.raises(CommandError) as error:
            load()
        assert str(error.value) == (
            "The demo could not be loaded, nothing was written: "
            "name: Domain with this Name already exists."
        )
        assert row_counts() == before
