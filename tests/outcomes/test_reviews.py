"""Value reviews, decisions and learnings: services and selectors on a real database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outcomes.models import (
    Decision,
    Evidence,
    Measure,
    ReviewAmendment,
    ValueReview,
    Verdict,
)
from outcomes.reports.content import report_content
from outcomes.reports.render import email_parts
from outcomes.reviews import selectors, services
from outcomes.reviews.export import review_markdown
from outcomes.reviews.snapshot import headline_words, snapshot_build, snapshot_hash
from outcomes.services import measure_create, measure_update
from tests.factories import bulk_tree, make_metric
from valuetree import services as node_services
from valuetree.models import Node

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)


def verdict(measure: Measure, status: str, progress: float | None = 0.5) -> Verdict:
    Verdict.objects.filter(measure=measure, is_current=True).update(is_current=False)
    now = timezone.now()
    return Verdict.objects.create(
        measure=measure,
        evaluated_at=now,
        as_of=now,
        status=status,
        judged_status=status,
        progress=progress,
        expected_progress=0.5,
    )


@pytest.fixture
def shape(tree):
    goal = node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    bet = node_services.node_create(tree=tree, parent=goal, title="Self-service", status="active")
    keep = node_services.node_create(tree=tree, parent=bet, title="Reorder", status="active")
    drop = node_services.node_create(tree=tree, parent=bet, title="Fax", status="active")
    other_bet = node_services.node_create(tree=tree, parent=goal, title="Partners")
    metric = make_metric(tree, kind="push", name="Orders")
    measures = {}
    for node, name in ((keep, "Reorder rate"), (drop, "Fax orders")):
        measures[name] = measure_create(
            node=node,
            name=name,
            direction="increase",
            baseline_value=10,
            baseline_date="2026-01-01",
            target_value=20,
            target_date="2027-01-01",
            metric=metric,
        )
    verdict(measures["Reorder rate"], "on_track", 0.5)
    verdict(measures["Fax orders"], "off_track", 0.1)
    return {
        "goal": goal,
        "bet": bet,
        "keep": keep,
        "drop": drop,
        "other_bet": other_bet,
        "metric": metric,
        **measures,
    }


class TestSnapshot:
    def test_same_rows_give_the_same_document_and_hash(self, tree, shape):
        first = snapshot_build(tree=tree, as_of=AT)
        second = snapshot_build(tree=tree, as_of=AT)
        assert first == second
        assert snapshot_hash(first) == snapshot_hash(second)
        assert len(snapshot_hash(first)) == 64

    def test_a_changed_row_changes_the_hash(self, tree, shape):
        before = snapshot_hash(snapshot_build(tree=tree, as_of=AT))
        node_services.node_update(node=shape["keep"], title="Reorder in one click")
        assert snapshot_hash(snapshot_build(tree=tree, as_of=AT)) != before

    def test_nodes_measures_roll_up_and_headline(self, tree, shape):
        snapshot = snapshot_build(tree=tree, as_of=AT)
        assert [n["title"] for n in snapshot["nodes"]] == [
            "Grow revenue",
            "Self-service",
            "Reorder",
            "Fax",
            "Partners",
        ]
        by_title = {n["title"]: n for n in snapshot["nodes"]}
        assert by_title["Reorder"]["outcome"]["status"] == "on_track"
        assert by_title["Fax"]["outcome"]["status"] == "off_track"
        assert by_title["Self-service"]["outcome"]["status"] == "at_risk"  # (0.75+0.25)/2
        reorder = next(m for m in snapshot["measures"] if m["name"] == "Reorder rate")
        assert reorder["verdict"]["status"] == "on_track"
        assert reorder["target_date"] == "2027-01-01"
        assert snapshot["headline"]["measures_by_status"] == {"off_track": 1, "on_track": 1}
        assert snapshot["metrics"][0]["health"] == "waiting"

    def test_the_headline_never_adds_amounts_in_different_units(self, tree, users):
        """Two goals valued in EUR and one in person-weeks: the headline once read
        "Expected value 100,050" (EUR and person-weeks added, no unit); a killed goal
        counted too, though killed work leaves the roll-up."""
        amounts = {
            "Grow revenue": (Decimal("60000"), "EUR", Decimal("20"), "person-weeks"),
            "Keep customers": (Decimal("40000"), "EUR", Decimal("30"), "person-weeks"),
            "Less toil": (Decimal("50"), "person-weeks", Decimal("10"), "person-weeks"),
            "Dropped": (Decimal("999"), "EUR", Decimal("999"), "EUR"),
        }
        for title, (value, value_unit, cost, cost_unit) in amounts.items():
            goal = node_services.node_create(tree=tree, parent=None, title=title)
            node_services.node_update(
                node=goal,
                expected_value_amount=value,
                expected_value_unit=value_unit,
                investment_amount=cost,
                investment_unit=cost_unit,
            )
        node_services.node_update(node=Node.objects.get(title="Dropped"), status="killed")

        head = snapshot_build(tree=tree, as_of=AT)["headline"]

        assert head["expected_by_unit"] == {"EUR": 100000.0, "person-weeks": 50.0}
        assert head["investment_by_unit"] == {"person-weeks": 60.0}
        assert head["expected_value"] is None  # no one figure for two units
        assert head["investment"] == 60.0
        assert headline_words(head) == {
            "expected": "100,000 EUR; 50 person-weeks",
            "realised": "—",
            "investment": "60 person-weeks",
        }
        review = services.review_start(tree=tree, by=users["owner"])
        services.review_publish(review=review, by=users["owner"], at=AT)
        data = selectors.review_data(ValueReview.objects.select_related("tree").get(pk=review.pk))
        _, plain, html = email_parts(report_content(data))
        for text in (review_markdown(data), plain, html):
            assert "100,000 EUR; 50 person-weeks" in text
            assert "100050" not in text and "100,050" not in text
            assert "60 person-weeks" in text


@pytest.mark.parametrize("status", ["reached", "too_early"])
def test_every_outcome_status_has_a_row_in_the_report_and_the_export(tree, users, status):
    """The e-mail, PDF and Markdown headline listed seven statuses and left out
    "reached" and "too early": a tree whose bets had reached their targets read
    "no data: 0 … stale: 0", its bets counted nowhere."""
    goal = node_services.node_create(tree=tree, parent=None, title="Grow")
    bet = node_services.node_create(tree=tree, parent=goal, title="Self-service")
    made = measure_create(
        node=bet,
        name="Reorders",
        direction="increase",
        baseline_value=10,
        baseline_date="2026-01-01",
        target_value=20,
        target_date="2027-01-01",
    )
    verdict(made, status)
    review = services.review_start(tree=tree, by=users["owner"])
    services.review_publish(review=review, by=users["owner"], at=AT)
    data = selectors.review_data(ValueReview.objects.select_related("tree").get(pk=review.pk))
    label = {"reached": "reached, must hold", "too_early": "too early to tell"}[status]

    content = report_content(data)
    assert {row["status"]: row["now"] for row in content["headline"]}[status] == 1
    _, plain, _ = email_parts(content)
    assert f"- {label}: 1" in plain
    assert f"| Bets and initiatives {label} | 1 |" in review_markdown(data)


class TestReviewLifecycle:
    def test_start_covers_the_period_since_the_last_review(self, tree, shape, users):
        first = services.review_start(tree=tree, by=users["owner"])
        assert first.period_start == tree.created_at
        assert first.previous is None
        services.review_publish(review=first, by=users["owner"], at=AT)
        second = services.review_start(tree=tree, by=users["editor"], title="Q3")
        assert (second.previous_id, second.period_start, second.status) == (
            first.pk,
            AT,
            "draft",
        )

    def test_one_open_review_per_tree(self, tree, shape, users):
        services.review_start(tree=tree, by=users["owner"])
        with pytest.raises(ValidationError, match="still open"):
            services.review_start(tree=tree, by=users["owner"])
        assert ValueReview.objects.count() == 1

    def test_published_review_is_frozen(self, tree, shape, users):
        review = services.review_start(tree=tree, by=users["owner"])
        review = services.review_publish(review=review, by=users["owner"], at=AT)
        frozen_hash = review.snapshot_hash
        assert frozen_hash == snapshot_hash(review.snapshot)
        # The live tree changes; the published review does not.
        node_services.node_update(node=shape["keep"], title="Renamed")
        verdict(shape["Reorder rate"], "missed", 0.0)
        data = selectors.review_data(ValueReview.objects.get(pk=review.pk))
        titles = [n["title"] for n in data["snapshot"]["nodes"]]
        assert "Reorder" in titles and "Renamed" not in titles
        assert ValueReview.objects.get(pk=review.pk).snapshot_hash == frozen_hash
        with pytest.raises(ValidationError, match="frozen"):
            services.review_update(review=review, notes="changed")
        with pytest.raises(ValidationError, match="frozen"):
            services.review_publish(review=review, by=users["owner"])

    def test_the_database_refuses_a_published_review_without_snapshot(self, tree, users):
        review = services.review_start(tree=tree, by=users["owner"])
        with pytest.raises(IntegrityError), transaction.atomic():
            ValueReview.objects.filter(pk=review.pk).update(status="published")

    def test_amendments_keep_the_original(self, tree, shape, users):
        review = services.review_start(tree=tree, by=users["owner"], notes="Fax is fine")
        review = services.review_publish(review=review, by=users["owner"], at=AT)
        amendment = services.review_amend(
            review=review, by=users["editor"], text="Fax is not fine", reason="Wrong figures"
        )
        review.refresh_from_db()
        assert review.notes == "Fax is fine"
        assert (amendment.by, amendment.reason) == (users["editor"], "Wrong figures")
        with pytest.raises(ValidationError):
            services.review_amend(review=review, by=users["editor"], text="x", reason=" ")
        assert ReviewAmendment.objects.count() == 1

    def test_draft_cannot_be_amended(self, tree, users):
        review = services.review_start(tree=tree, by=users["owner"])
        with pytest.raises(ValidationError, match="Only a published"):
            services.review_amend(review=review, by=users["owner"], text="x", reason="y")


class TestChanges:
    def test_changes_between_two_reviews_are_exact(self, tree, shape, users):
        first = services.review_start(tree=tree, by=users["owner"])
        services.review_publish(review=first, by=users["owner"], at=AT)
        # Known edits between the reviews:
        verdict(shape["Reorder rate"], "achieved", 1.0)  # on_track → achieved, +0.25
        measure_update(measure=shape["Fax orders"], target_value=15)  # target edit, by owner
        services.decision_create(
            node=shape["drop"], kind="kill", rationale="Nobody faxes", by=users["owner"]
        )
        added = node_services.node_create(tree=tree, parent=shape["other_bet"], title="Portal")
        node_services.node_move(node=shape["keep"], parent=shape["other_bet"])
        second = services.review_start(tree=tree, by=users["owner"])
        second = services.review_publish(
            review=second, by=users["owner"], at=AT.replace(day=29, month=9)
        )
        changes = second.changes
        assert changes["measure_moves"] == [
            {
                "id": shape["Reorder rate"].pk,
                "name": "Reorder rate",
                "node": shape["keep"].pk,
                "node_title": "Reorder",
                "from": "on_track",
                "to": "achieved",
                "size": 0.25,
                "progress_change": 0.5,
            }
        ]
        assert [(e["field"], e["from"], e["to"]) for e in changes["edits"]] == [
            ("target_value", 20.0, 15.0)
        ]
        assert changes["added"] == [
            {
                "id": added.pk,
                "kind": "initiative",
                "title": "Portal",
                "parent": shape["other_bet"].pk,
            }
        ]
        assert [(m["id"], m["from_parent"], m["to_parent"]) for m in changes["moved"]] == [
            (shape["keep"].pk, shape["bet"].pk, shape["other_bet"].pk)
        ]
        assert [(k["id"], k["from"]) for k in changes["killed"]] == [(shape["drop"].pk, "active")]
        assert changes["done"] == [] and changes["removed"] == []
        moves = {(m["title"], m["from"], m["to"]) for m in changes["node_moves"]}
        assert ("Reorder", "on_track", "achieved") in moves
        assert ("Partners", "no_data", "achieved") in moves

    def test_edited_figures_read_as_people_write_them(self, tree, shape, users, client):
        """A target edit read "target value 20.0 → 1234567.5" on the page, in the
        e-mail, the PDF and the Markdown export."""
        first = services.review_start(tree=tree, by=users["owner"])
        services.review_publish(review=first, by=users["owner"], at=AT)
        measure_update(measure=shape["Fax orders"], target_value=1234567.5)
        measure_update(measure=shape["Reorder rate"], target_date="2027-03-31")
        second = services.review_start(tree=tree, by=users["owner"])
        services.review_publish(review=second, by=users["owner"], at=AT.replace(month=9))
        data = selectors.review_data(ValueReview.objects.select_related("tree").get(pk=second.pk))
        client.force_login(users["viewer"])
        page = client.get(f"/reviews/{second.pk}/").content.decode()
        content = report_content(data)
        _, plain, html = email_parts(content)

        for text in (page, plain, html, review_markdown(data), "\n".join(content["changes"])):
            assert "target value 20 → 1,234,567.5" in text
            assert "20.0" not in text and "1234567.5" not in text
            assert "target date 2027-01-01 → 2027-03-31" in text

    def test_compare_orders_the_two_reviews(self, tree, shape, users):
        first = services.review_publish(
            review=services.review_start(tree=tree, by=users["owner"]), by=None, at=AT
        )
        verdict(shape["Fax orders"], "missed", 0.0)
        second = services.review_publish(
            review=services.review_start(tree=tree, by=users["owner"]),
            by=None,
            at=AT + dt.timedelta(days=90),
        )
        result = selectors.compare(second, first)
        assert (result["from"], result["to"]) == (first, second)
        assert [
            (m["name"], m["from"], m["to"], m["size"]) for m in result["changes"]["measure_moves"]
        ] == [("Fax orders", "off_track", "missed", -0.25)]


class TestDecisions:
    def test_kill_sets_the_status_and_keeps_evidence(self, tree, shape, users):
        decision = services.decision_create(
            node=shape["drop"],
            kind="kill",
            rationale="Fax orders stay flat",
            by=users["editor"],
            evidence=[{"kind": "link", "url": "https://example.com/survey", "title": "Survey"}],
        )
        assert Node.objects.get(pk=shape["drop"].pk).status == "killed"
        assert decision.previous_status == "active"
        assert [e.kind for e in decision.evidence.all()] == ["link"]

    def test_default_evidence_is_the_current_verdicts(self, tree, shape, users):
        decision = services.decision_create(
            node=shape["bet"], kind="persevere", rationale="On course", by=users["owner"]
        )
        verdicts = sorted(e.verdict.measure.name for e in decision.evidence.all())
        assert verdicts == ["Fax orders", "Reorder rate"]

    def test_evidence_must_belong_to_the_node(self, tree, shape, users):
        foreign = verdict(shape["Reorder rate"], "on_track")
        with pytest.raises(ValidationError, match="No verdict"):
            services.decision_create(
                node=shape["drop"],
                kind="persevere",
                rationale="Why not",
                by=users["owner"],
                evidence=[{"kind": "verdict", "id": foreign.pk}],
            )
        assert Decision.objects.count() == 0

    @pytest.mark.parametrize("rationale", ["", "   "])
    def test_rationale_is_required(self, tree, shape, users, rationale):
        with pytest.raises(ValidationError) as error:
            services.decision_create(
                node=shape["drop"], kind="kill", rationale=rationale, by=users["owner"]
            )
        assert "rationale" in error.value.message_dict
        assert Node.objects.get(pk=shape["drop"].pk).status == "active"

    def test_database_refuses_a_blank_rationale(self, tree, shape):
        with pytest.raises(IntegrityError), transaction.atomic():
            Decision.objects.create(
                tree=tree, node=shape["drop"], node_title="Fax", kind="kill", rationale=""
            )

    def test_goals_take_no_decisions(self, tree, shape, users):
        with pytest.raises(ValidationError, match="bets and initiatives"):
            services.decision_create(
                node=shape["goal"], kind="done", rationale="Reached", by=users["owner"]
            )

    @pytest.mark.django_db(transaction=True)
    def test_a_decision_is_taken_in_a_transaction_of_its_own(self, tree, shape, users):
        # Called outside any transaction (as an API view with autocommit calls it), it
        # answered 500: "select_for_update cannot be used outside of a transaction".
        decision = services.decision_create(
            node=shape["drop"], kind="persevere", rationale="Still worth it", by=users["owner"]
        )
        assert decision.pk is not None

    @pytest.mark.parametrize("settled", ["kill", "done"])
    @pytest.mark.parametrize("kind", ["persevere", "pivot"])
    def test_no_persevere_or_pivot_under_a_killed_or_finished_bet(
        self, tree, shape, users, settled, kind
    ):
        services.decision_create(
            node=shape["bet"], kind=settled, rationale="Nobody self-serves", by=users["owner"]
        )
        count = Decision.objects.count()
        with pytest.raises(ValidationError, match="Self-service"):
            services.decision_create(
                node=shape["drop"],
                kind=kind,
                rationale="Keep faxing",
                by=users["owner"],
                pivot_title="E-mail orders" if kind == "pivot" else "",
            )
        assert Decision.objects.count() == count
        assert Node.objects.get(pk=shape["drop"].pk).status == "active"
        # Closing the work under it is still recorded.
        services.decision_create(
            node=shape["drop"], kind="kill", rationale="Its bet is gone", by=users["owner"]
        )

    def test_pivot_kills_the_old_node_and_creates_the_new(self, tree, shape, users):
        decision = services.decision_create(
            node=shape["drop"],
            kind="pivot",
            rationale="Customers want e-mail, not fax",
            by=users["owner"],
            pivot_title="E-mail orders",
            pivot_hypothesis="We believe e-mail ordering will …",
        )
        old = Node.objects.get(pk=shape["drop"].pk)
        new = decision.pivot_to
        assert old.status == "killed"
        assert (new.title, new.status, new.kind, new.parent_id) == (
            "E-mail orders",
            "active",
            "initiative",
            shape["bet"].pk,
        )
        assert list(new.pivoted_from.all()) == [decision]
        assert old.decisions.get() == decision

    def test_pivot_links_an_existing_node(self, tree, shape, users):
        decision = services.decision_create(
            node=shape["drop"],
            kind="pivot",
            rationale="Reorder does it better",
            by=users["owner"],
            pivot_to=shape["keep"],
        )
        assert decision.pivot_to == shape["keep"]
        assert Node.objects.count() == 5

    def test_pivot_needs_a_new_hypothesis(self, tree, shape, users):
        with pytest.raises(ValidationError, match="pivot"):
            services.decision_create(
                node=shape["drop"], kind="pivot", rationale="Change", by=users["owner"]
            )

    def test_supersedes_an_earlier_decision_on_the_same_node(self, tree, shape, users):
        first = services.decision_create(
            node=shape["keep"], kind="persevere", rationale="Give it time", by=users["owner"]
        )
        second = services.decision_create(
            node=shape["keep"],
            kind="done",
            rationale="Target reached",
            by=users["owner"],
            supersedes=first,
        )
        assert list(first.superseded_by.all()) == [second]
        with pytest.raises(ValidationError, match="same node"):
            services.decision_create(
                node=shape["drop"], kind="persevere", rationale="x", by=None, supersedes=first
            )

    def test_killing_twice_is_refused(self, tree, shape, users):
        services.decision_create(node=shape["drop"], kind="kill", rationale="Stop", by=None)
        with pytest.raises(ValidationError, match="killed already"):
            services.decision_create(node=shape["drop"], kind="done", rationale="?", by=None)

    def test_decisions_cannot_be_deleted(self, tree, shape, users):
        from outcomes.reviews.models import DecisionsAreKept

        decision = services.decision_create(
            node=shape["drop"], kind="kill", rationale="Stop", by=None
        )
        with pytest.raises(DecisionsAreKept):
            decision.delete()
        with pytest.raises(DecisionsAreKept):
            Decision.objects.filter(pk=decision.pk).delete()
        assert Decision.objects.filter(pk=decision.pk).exists()

    def test_deleting_the_whole_tree_still_works(self, tree, shape, users):
        services.decision_create(node=shape["drop"], kind="kill", rationale="Stop", by=None)
        services.review_publish(review=services.review_start(tree=tree, by=None), by=None)
        node_services.tree_delete(tree=tree)
        assert Decision.objects.count() == 0 and ValueReview.objects.count() == 0

    def test_a_deleted_node_leaves_its_decisions(self, tree, shape, users):
        decision = services.decision_create(
            node=shape["drop"], kind="kill", rationale="Stop", by=None
        )
        node_services.node_delete(node=Node.objects.get(pk=shape["drop"].pk))
        decision.refresh_from_db()
        assert (decision.node_id, decision.node_title) == (None, "Fax")
        assert Evidence.objects.filter(decision=decision).count() == 2 - 1  # one verdict


class TestDraft:
    def test_decisions_needed_lists_trouble_and_staleness(self, tree, shape, users):
        review = services.review_start(tree=tree, by=users["owner"])
        data = selectors.review_data(review)
        needed = {item["node"]["title"]: item["reasons"] for item in data["needed"]}
        assert needed["Fax"] == ["off track"]
        assert needed["Self-service"] == ["at risk"]
        assert "Reorder" not in needed
        fax = next(item for item in data["needed"] if item["node"]["title"] == "Fax")
        assert [m["name"] for m in fax["measures"]] == ["Fax orders"]

    @pytest.mark.parametrize("kind", ["kill", "done"])
    def test_work_under_a_killed_or_finished_bet_needs_no_decision(self, tree, shape, users, kind):
        """Killing "Self-service" asked, at every review and reminder after, for a
        decision on its off-track initiative "Fax", though the bet it tests is gone."""
        services.decision_create(
            node=shape["bet"], kind=kind, rationale="Nobody self-serves", by=users["owner"]
        )
        review = services.review_start(tree=tree, by=users["owner"])
        needed = [item["node"]["title"] for item in selectors.review_data(review)["needed"]]
        assert "Fax" not in needed and "Self-service" not in needed
        assert "Fax" not in [i["node"]["title"] for i in selectors.items_needing_decision(tree)]

    def test_killed_work_leaves_the_headline_s_outcome_counts(self, tree, shape, users):
        """The headline counted the killed bet and its initiatives ("Bets and
        initiatives off track: 1") though killed work leaves the roll-up."""
        before = snapshot_build(tree=tree, as_of=AT)["headline"]["outcomes_by_status"]
        assert before == {"at_risk": 1, "no_data": 1, "off_track": 1, "on_track": 1}
        services.decision_create(
            node=shape["bet"], kind="kill", rationale="Nobody self-serves", by=users["owner"]
        )
        head = snapshot_build(tree=tree, as_of=AT)["headline"]
        assert head["outcomes_by_status"] == {"no_data": 1}  # "Partners" alone is live
        assert head["nodes_by_status"]["killed"] == 1  # the lifecycle count still has it

    def test_items_needing_decision_is_the_draft_rule_without_a_review(
        self, tree, shape, users, django_assert_num_queries
    ):
        """The public selector the reminders use gives what a draft review lists as
        "decisions needed", in the same order, with no review started."""
        now = timezone.now()
        with django_assert_num_queries(9):
            items = selectors.items_needing_decision(tree, now=now)
        assert [(i["node"]["title"], i["reasons"]) for i in items][:2] == [
            ("Fax", ["off track"]),
            ("Self-service", ["at risk"]),
        ]
        review = services.review_start(tree=tree, by=users["owner"])
        drafted = selectors.review_data(review, now=now)["needed"]
        assert [(i["node"]["id"], i["reasons"]) for i in items] == [
            (i["node"]["id"], i["reasons"]) for i in drafted
        ]

    def test_no_decision_for_n_days(self, tree, shape, users):
        Node.objects.filter(pk=shape["keep"].pk).update(
            created_at=timezone.now() - dt.timedelta(days=91)
        )
        review = services.review_start(tree=tree, by=users["owner"])
        needed = {i["node"]["title"]: i["reasons"] for i in selectors.review_data(review)["needed"]}
        assert needed["Reorder"] == ["no decision in 91 days"]
        services.review_policy_set(tree=tree, decision_due_days=120)
        needed = {i["node"]["title"] for i in selectors.review_data(review)["needed"]}
        assert "Reorder" not in needed

    def test_followup_of_the_previous_reviews_decisions(self, tree, shape, users):
        first = services.review_start(tree=tree, by=users["owner"])
        services.decision_create(
            node=shape["keep"], kind="persevere", rationale="Keep going", by=None, review=first
        )
        services.review_publish(review=first, by=None, at=AT)
        verdict(shape["Reorder rate"], "achieved", 1.0)
        second = services.review_start(tree=tree, by=users["owner"])
        [follow] = selectors.review_data(second)["followup"]
        assert follow["kind"] == "persevere"
        assert follow["moves"] == [{"name": "Reorder rate", "from": "on_track", "to": "achieved"}]
        # Frozen at publication: later moves do not change it.
        second = services.review_publish(review=second, by=None)
        verdict(shape["Reorder rate"], "missed", 0.0)
        [frozen] = selectors.review_data(ValueReview.objects.get(pk=second.pk))["followup"]
        assert frozen["moves"] == follow["moves"]


class TestLearnings:
    def test_crud_and_search(self, tree, shape, users):
        learning = services.learning_create(
            tree=tree,
            by=users["editor"],
            kind="invalidated",
            text="Nobody faxes any more",
            node=shape["drop"],
        )
        services.learning_create(tree=tree, by=None, kind="process", text="Review monthly")
        assert [row.pk for row in selectors.learnings(tree_ids=[tree.pk], query="fax")] == [
            learning.pk
        ]
        assert [row.pk for row in selectors.learnings(tree_ids=[tree.pk], query="Fax faxes")] == [
            learning.pk
        ]
        services.learning_update(learning=learning, text="Faxes are dead")
        with pytest.raises(ValidationError):
            services.learning_update(learning=learning, kind="wild")
        services.learning_delete(learning=learning)
        assert selectors.learnings(tree_ids=[tree.pk]).count() == 1


# --- Query counts do not grow with the tree -------------------------------------------------


def _grow(tree, size: int) -> None:
    nodes = bulk_tree(tree, goals=1, bets=size, initiatives=2, measures=2)
    now = timezone.now()
    Verdict.objects.bulk_create(
        Verdict(
            measure=m,
            evaluated_at=now,
            as_of=now,
            status="at_risk",
            judged_status="at_risk",
            progress=0.3,
            expected_progress=0.5,
        )
        for m in Measure.objects.filter(node__in=nodes)
    )


def _counts(tree, users) -> dict[str, int]:
    """Queries of each step of a review's life."""
    counts = {}

    def run(name, call):
        with CaptureQueriesContext(connection) as context:
            result = call()
        counts[name] = len(context)
        return result

    review = run("start", lambda: services.review_start(tree=tree, by=users["owner"]))
    review = ValueReview.objects.select_related("tree").get(pk=review.pk)
    data = run("draft", lambda: selectors.review_data(review))
    run("publish", lambda: services.review_publish(review=review, by=users["owner"]))
    review = ValueReview.objects.select_related("tree").get(pk=review.pk)
    run("published", lambda: selectors.review_data(review))
    second = services.review_publish(
        review=services.review_start(tree=tree, by=users["owner"]), by=None
    )
    run("compare", lambda: selectors.compare(review, second))
    counts["needed"] = len(data["needed"])
    return counts


# Pinned at two sizes: the same numbers for 3 and 30 bets (with 2 initiatives each).
QUERIES = {"start": 6, "draft": 14, "publish": 12, "published": 4, "compare": 0}


@pytest.mark.parametrize("size", [3, 30])
def test_query_counts_are_constant(tree, users, size):
    _grow(tree, size)
    counts = _counts(tree, users)
    assert counts.pop("needed") == 3 * size
    assert counts == QUERIES


@pytest.mark.django_db(transaction=True)
def test_a_snapshot_called_outside_a_transaction_takes_its_own(tree, users):
    # review_snapshot locks the tree (one snapshot at a time names the last published
    # review as its previous): outside an atomic block PostgreSQL refuses the lock
    # ("select_for_update cannot be used outside of a transaction") and SQLite took none.
    node_services.node_create(tree=tree, parent=None, title="Grow revenue")
    first = services.review_snapshot(tree=tree, by=users["owner"], title="First")
    second = services.review_snapshot(tree=tree, by=None, title="")
    assert (first.is_published, second.previous_id) == (True, first.pk)
    assert second.title.startswith("Review of ")
    assert second.changes["added"] == []
