"""Data products in the open: similarity, lifecycle, warnings, duplicates, early
consumers and the board, against a real database (services and selectors)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from tests.factories import make_user
from valuetree import selectors, services
from valuetree.models import (
    ConsumerInterest,
    DataProduct,
    DataProductLink,
    Domain,
    LifecycleStage,
    LifecycleTransition,
    Notification,
    OutputPort,
)
from valuetree.similarity import (
    NOTIFY_SCORE,
    SAME_DOMAIN_FACTOR,
    Probe,
    similar_products,
    trigram_similarity,
    trigrams,
)

DOMAINS = {
    "lab": "Laboratory",
    "imaging": "Imaging",
    "finance": "Finance",
    "supply-chain": "Supply chain",
    "hr": "Human resources",
    "marketing": "Marketing",
}

# (slug, domain, name, purpose, output port names)
CATALOGUE = [
    (
        "lab-patient-sample-turnaround",
        "lab",
        "Patient sample turnaround",
        "Time from sample collection to validated result for every patient sample",
        ["sample_turnaround_daily", "turnaround_by_analyser"],
    ),
    (
        "imaging-sample-turnaround-times",
        "imaging",
        "Sample turnaround times",
        "Time from sample collection to reported result for each sample",
        ["sample_turnaround_weekly"],
    ),
    (
        "finance-supplier-invoice-ledger",
        "finance",
        "Supplier invoice ledger",
        "Every invoice received from suppliers with amount, currency and due date",
        ["invoice_lines", "supplier_invoices"],
    ),
    (
        "supply-supplier-invoices",
        "supply-chain",
        "Supplier invoices",
        "Invoices received from our suppliers, with amounts and due dates",
        ["supplier_invoices_api"],
    ),
    (
        "hr-employee-headcount",
        "hr",
        "Employee headcount by month",
        "Number of employees per department at the end of each month",
        ["headcount_monthly"],
    ),
    (
        "finance-monthly-headcount",
        "finance",
        "Monthly headcount",
        "Employees per department counted at each month end, for budgeting",
        ["headcount_by_department"],
    ),
    (
        "lab-analyser-qc",
        "lab",
        "Analyser QC results",
        "Quality control runs of every analyser with pass or fail",
        ["qc_runs"],
    ),
    (
        "lab-reagent-consumption",
        "lab",
        "Reagent consumption",
        "Reagent kits used per analyser and week",
        ["reagent_usage"],
    ),
    (
        "imaging-mri-utilisation",
        "imaging",
        "MRI scanner utilisation",
        "Booked versus used scanner hours per MRI machine",
        ["scanner_hours"],
    ),
    (
        "imaging-report-backlog",
        "imaging",
        "Radiology report backlog",
        "Studies still waiting for a radiologist's report",
        ["open_studies"],
    ),
    (
        "finance-cost-centre-budget",
        "finance",
        "Cost centre budget",
        "Planned and actual spend per cost centre",
        ["budget_vs_actual"],
    ),
    (
        "finance-cash-flow-forecast",
        "finance",
        "Cash flow forecast",
        "Expected cash in and out for the next thirteen weeks",
        ["cash_forecast"],
    ),
    (
        "supply-warehouse-stock",
        "supply-chain",
        "Warehouse stock levels",
        "Quantity on hand for every article in every warehouse",
        ["stock_on_hand"],
    ),
    (
        "supply-delivery-routes",
        "supply-chain",
        "Delivery route plan",
        "Planned truck routes and stops for tomorrow",
        ["routes", "stops"],
    ),
    (
        "supply-purchase-orders",
        "supply-chain",
        "Purchase orders",
        "Orders placed with suppliers and their delivery status",
        ["open_purchase_orders"],
    ),
    (
        "hr-sick-leave",
        "hr",
        "Sick leave absences",
        "Days of absence through illness, anonymised by team",
        ["absence_days"],
    ),
    (
        "hr-training-completions",
        "hr",
        "Training completions",
        "Mandatory courses finished per person",
        ["course_completions"],
    ),
    (
        "marketing-campaign-ctr",
        "marketing",
        "Campaign click-through",
        "Clicks and impressions of each online campaign",
        ["campaign_clicks"],
    ),
    (
        "marketing-newsletter-subscribers",
        "marketing",
        "Newsletter subscribers",
        "People subscribed to the newsletter and when they opted in",
        ["subscribers"],
    ),
    (
        "marketing-web-sessions",
        "marketing",
        "Website visitor sessions",
        "Visits to the public website by source and landing page",
        ["sessions_daily"],
    ),
]
# Near-duplicates across domains: each names its twin.
TWINS = {
    "lab-patient-sample-turnaround": "imaging-sample-turnaround-times",
    "imaging-sample-turnaround-times": "lab-patient-sample-turnaround",
    "finance-supplier-invoice-ledger": "supply-supplier-invoices",
    "supply-supplier-invoices": "finance-supplier-invoice-ledger",
    "hr-employee-headcount": "finance-monthly-headcount",
    "finance-monthly-headcount": "hr-employee-headcount",
}
UNRELATED = sorted({slug for slug, *_ in CATALOGUE} - set(TWINS))


def ports(*names: str) -> list[dict[str, str]]:
    return [{"name": name, "kind": "table"} for name in names]


@pytest.fixture
def domains(db) -> dict[str, Domain]:
    return {slug: services.domain_create(name=name, slug=slug) for slug, name in DOMAINS.items()}


@pytest.fixture
def catalogue(domains) -> dict[str, DataProduct]:
    """Twenty products in six domains, each owned by its domain's steward."""
    stewards = {slug: make_user(f"steward-{slug}") for slug in DOMAINS}
    return {
        slug: services.data_product_create(
            slug=slug,
            domain=domains[domain],
            name=name,
            purpose=purpose,
            owner=stewards[domain],
            output_ports=ports(*port_names),
        )
        for slug, domain, name, purpose, port_names in CATALOGUE
    }


@pytest.fixture
def lab(domains) -> Domain:
    return domains["lab"]


def product(domain: Domain, slug: str, **fields) -> DataProduct:
    fields.setdefault("name", slug.replace("-", " ").title())
    return services.data_product_create(slug=slug, domain=domain, **fields)


def stages(product: DataProduct) -> list[tuple[str, str]]:
    return list(product.transitions.values_list("from_stage", "to_stage"))


def inbox(user, kind: str | None = None) -> list[str]:
    notifications = Notification.objects.filter(recipient=user)
    if kind is not None:
        notifications = notifications.filter(kind=kind)
    return list(notifications.values_list("subject", flat=True))


# --- Trigram similarity ----------------------------------------------------------------


class TestTrigrams:
    def test_trigrams_pad_each_word_like_pg_trgm(self):
        assert trigrams("Cat") == {"  c", " ca", "cat", "at "}
        assert trigrams("a-b") == {"  a", " a ", "  b", " b "}

    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            ("word", "word", 1.0),
            ("abc", "xyz", 0.0),
            ("", "word", 0.0),
            ("--", "--", 0.0),  # no words: no trigrams, not a division by zero
            ("Sample-Turnaround", "sample turnaround", 1.0),  # case and punctuation
            ("sample_turnaround", "sample turnaround", 1.0),  # "_" splits words too
            # {"  c"," ca","cat","at "} vs {"  c"," ca","car","art","rt "}: 2 of 7.
            ("cat", "cart", 2 / 7),
            # pg_trgm's documented example: 4 shared of 11.
            ("word", "two words", 4 / 11),
        ],
    )
    def test_similarity_by_hand(self, a, b, expected):
        assert trigram_similarity(a, b) == pytest.approx(expected)
        assert trigram_similarity(b, a) == pytest.approx(expected)

    @pytest.mark.parametrize(
        ("probe", "expected"),
        [
            (Probe("Orders", "Why", "orders_table"), {"name": 0.5, "purpose": 0.3, "ports": 0.2}),
            (Probe("Orders", "Why"), {"name": 0.5 / 0.8, "purpose": 0.3 / 0.8}),
            (Probe("Orders", ports="orders_table"), {"name": 0.5 / 0.7, "ports": 0.2 / 0.7}),
            (Probe("Orders", purpose="   ", ports=""), {"name": 1.0}),
            (Probe("", purpose="Why"), {"purpose": 1.0}),
            (Probe(""), {}),
        ],
    )
    def test_weights_share_out_the_empty_fields(self, probe, expected):
        weights = probe.weights()
        assert weights == pytest.approx(expected)
        if weights:
            assert sum(weights.values()) == pytest.approx(1.0)

    def test_an_empty_probe_finds_nothing(self, catalogue):
        assert similar_products(Probe("")) == []


# --- The seeded catalogue ----------------------------------------------------------------


@pytest.mark.django_db
class TestSimilarInTheCatalogue:
    @pytest.mark.parametrize("slug", sorted(TWINS))
    def test_a_near_duplicate_ranks_its_twin_first(self, catalogue, slug):
        me = catalogue[slug]
        found = similar_products(Probe.of(me), exclude_pk=me.pk, min_score=0)
        assert found[0].product.slug == TWINS[slug]
        assert found[0].score >= NOTIFY_SCORE
        assert found[0].label == "very likely the same product"
        # The runner-up may be related in meaning, but nobody is told about it.
        assert found[1].score < NOTIFY_SCORE
        shown = similar_products(Probe.of(me), exclude_pk=me.pk)
        assert shown[0].product.slug == TWINS[slug]
        assert me.domain_id != found[0].product.domain_id  # found across domains

    @pytest.mark.parametrize("slug", UNRELATED)
    def test_an_unrelated_product_is_like_nothing(self, catalogue, slug):
        me = catalogue[slug]
        assert similar_products(Probe.of(me), exclude_pk=me.pk, min_score=NOTIFY_SCORE) == []
        best = similar_products(Probe.of(me), exclude_pk=me.pk, min_score=0, limit=1)
        assert best[0].score < NOTIFY_SCORE
        assert best[0].label in ("related", "not alike")

    def test_without_exclude_a_product_is_most_like_itself(self, catalogue):
        me = catalogue["hr-sick-leave"]
        # Without a domain the same text scores 1; in its own domain it weighs
        # SAME_DOMAIN_FACTOR, and still reads "very likely the same product".
        [found] = similar_products(Probe(**Probe.of(me).fields()))
        assert (found.product, found.score) == (me, 1.0)
        mine = {m.product: m for m in similar_products(Probe.of(me))}
        assert mine[me].score == SAME_DOMAIN_FACTOR
        assert mine[me].label == "very likely the same product"

    def test_a_name_being_typed_finds_both_turnaround_products(self, catalogue):
        found = similar_products(Probe("Sample turnaround"))
        assert {s.product.slug for s in found[:2]} == {
            "imaging-sample-turnaround-times",
            "lab-patient-sample-turnaround",
        }
        assert found[1].score > found[2].score if len(found) > 2 else True

    def test_scores_are_best_first_and_limited(self, catalogue):
        found = similar_products(Probe("headcount invoices sample"), min_score=0, limit=3)
        assert len(found) == 3
        assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)

    @pytest.mark.parametrize("settled", ["retired", "duplicate"])
    def test_retired_products_and_known_duplicates_are_not_suggested(self, catalogue, settled):
        twin = catalogue["imaging-sample-turnaround-times"]
        if settled == "retired":
            services.data_product_transition(product=twin, to_stage="retired", by=None)
        else:
            other = catalogue["lab-patient-sample-turnaround"]
            services.data_product_mark_duplicate(product=twin, original=other, by=None)
        me = catalogue["lab-patient-sample-turnaround"]
        assert similar_products(Probe.of(me), exclude_pk=me.pk) == []

    def test_the_catalogue_seeding_told_the_first_twin_owners(self, catalogue):
        """Each twin created second told the owner of the first one, once."""
        told = Notification.objects.filter(kind="similar_product").values_list(
            "recipient__username", "data_product__slug", "related_product__slug"
        )
        assert sorted(told) == [
            ("steward-finance", "supply-supplier-invoices", "finance-supplier-invoice-ledger"),
            ("steward-hr", "finance-monthly-headcount", "hr-employee-headcount"),
            ("steward-lab", "imaging-sample-turnaround-times", "lab-patient-sample-turnaround"),
        ]


# --- Lifecycle ---------------------------------------------------------------------------

ALL_STAGES = list(LifecycleStage.values)
MOVES = {
    "discovery": ["design", "build", "live", "deprecated", "retired"],
    "design": ["discovery", "build", "live", "deprecated", "retired"],
    "build": ["discovery", "design", "live", "deprecated", "retired"],
    "live": ["deprecated", "retired"],
    "deprecated": ["live", "retired"],
    "retired": [],
}


@pytest.mark.django_db
class TestLifecycle:
    def test_creation_is_recorded_as_a_transition_by_its_creator(self, users, lab):
        made = product(lab, "qc", by=users["editor"])
        [transition] = made.transitions.all()
        assert (transition.from_stage, transition.to_stage, transition.by) == (
            "",
            "discovery",
            users["editor"],
        )

    def test_created_in_a_later_stage(self, users, lab):
        made = product(lab, "qc", stage="build", by=users["owner"])
        assert stages(made) == [("", "build")]

    @pytest.mark.parametrize("stage", ALL_STAGES)
    def test_stage_moves_table(self, stage):
        assert services.stage_moves(stage) == MOVES[stage]

    @pytest.mark.parametrize(
        ("start", "to"),
        [(start, to) for start in ALL_STAGES for to in ALL_STAGES if start != to],
    )
    def test_a_move_is_allowed_exactly_when_the_table_says(self, users, lab, start, to):
        made = product(lab, "qc", stage=start, owner=users["owner"], output_ports=ports("qc_runs"))
        if to in MOVES[start]:
            services.data_product_transition(
                product=made, to_stage=to, by=users["owner"], note="Planned"
            )
            assert DataProduct.objects.get(pk=made.pk).stage == to
            last = made.transitions.last()
            assert (last.from_stage, last.to_stage, last.by, last.note) == (
                start,
                to,
                users["owner"],
                "Planned",
            )
        else:
            with pytest.raises(ValidationError) as refused:
                services.data_product_transition(product=made, to_stage=to, by=users["owner"])
            assert (
                f"A {start} product cannot move to {to}" in refused.value.message_dict["stage"][0]
            )
            assert DataProduct.objects.get(pk=made.pk).stage == start
            assert stages(made) == [("", start)]

    def test_retired_says_it_is_final(self, users, lab):
        made = product(lab, "qc", stage="retired")
        with pytest.raises(ValidationError) as refused:
            services.data_product_transition(product=made, to_stage="live", by=None)
        assert refused.value.message_dict == {
            "stage": ["A retired product cannot move to live (allowed: none: retired is final)."]
        }

    def test_moving_to_the_same_stage_records_nothing(self, lab):
        made = product(lab, "qc")
        assert services.data_product_transition(product=made, to_stage="discovery", by=None) is None
        assert made.transitions.count() == 1

    def test_an_unknown_stage_is_refused(self, lab):
        made = product(lab, "qc")
        with pytest.raises(ValidationError) as refused:
            services.data_product_transition(product=made, to_stage="shelved", by=None)
        assert refused.value.message_dict == {"stage": ["Unknown stage 'shelved'."]}

    @pytest.mark.parametrize(
        ("owner", "port_names", "errors"),
        [
            (False, ["qc_runs"], {"owner"}),
            (True, [], {"output_ports"}),
            (False, [], {"owner", "output_ports"}),
        ],
    )
    def test_going_live_needs_an_owner_and_a_port(self, users, lab, owner, port_names, errors):
        made = product(
            lab,
            "qc",
            stage="build",
            owner=users["owner"] if owner else None,
            output_ports=ports(*port_names),
        )
        with pytest.raises(ValidationError) as refused:
            services.data_product_transition(product=made, to_stage="live", by=users["owner"])
        assert set(refused.value.message_dict) == errors
        assert DataProduct.objects.get(pk=made.pk).stage == "build"
        assert stages(made) == [("", "build")]

    def test_created_live_without_a_port_is_refused_and_not_saved(self, users, lab):
        with pytest.raises(ValidationError) as refused:
            product(lab, "qc", stage="live", owner=users["owner"])
        assert refused.value.message_dict == {
            "output_ports": ["A live data product needs at least one output port."]
        }
        assert not DataProduct.objects.filter(slug="qc").exists()
        assert not LifecycleTransition.objects.exists()

    def test_update_with_a_stage_records_who_moved_it(self, users, lab):
        made = product(lab, "qc", owner=users["owner"], output_ports=ports("qc_runs"))
        services.data_product_update(product=made, stage="live", by=users["editor"])
        last = made.transitions.last()
        assert (last.from_stage, last.to_stage, last.by) == ("discovery", "live", users["editor"])

    def test_update_with_a_refused_stage_changes_nothing(self, users, lab):
        made = product(lab, "qc", stage="live", owner=users["owner"], output_ports=ports("a"))
        with pytest.raises(ValidationError) as refused:
            services.data_product_update(
                product=made, stage="discovery", name="Renamed", by=users["owner"]
            )
        assert set(refused.value.message_dict) == {"stage"}
        assert DataProduct.objects.values_list("name", "stage").get(pk=made.pk) == (
            "Qc",
            "live",
        )

    def test_removing_the_last_port_of_a_live_product_is_refused(self, users, lab):
        made = product(lab, "qc", stage="live", owner=users["owner"], output_ports=ports("a"))
        with pytest.raises(ValidationError) as refused:
            services.data_product_update(product=made, output_ports=[], by=users["owner"])
        assert set(refused.value.message_dict) == {"output_ports"}
        assert list(
            OutputPort.objects.filter(data_product=made).values_list("name", flat=True)
        ) == ["a"]

    def test_removing_the_owner_of_a_live_product_is_refused(self, users, lab):
        made = product(lab, "qc", stage="live", owner=users["owner"], output_ports=ports("a"))
        with pytest.raises(ValidationError) as refused:
            services.data_product_update(product=made, owner=None, by=users["owner"])
        assert set(refused.value.message_dict) == {"owner"}
        assert DataProduct.objects.get(pk=made.pk).owner == users["owner"]


# --- Deprecation warns whoever relies on the product --------------------------------------


@pytest.fixture
def with_email(users):
    for role, user in users.items():
        user.email = f"{role}@example.com"
        user.save()
    return users


@pytest.fixture
def bet(tree):
    goal = services.node_create(tree=tree, parent=None, title="Faster results")
    return services.node_create(tree=tree, parent=goal, title="Automate the lab")


@pytest.mark.django_db
class TestDeprecationWarnings:
    def deprecate(self, made, capture, note="Replaced by the LIMS feed"):
        with capture(execute=True):
            services.data_product_transition(
                product=made, to_stage="deprecated", by=made.owner, note=note
            )

    def test_the_owner_of_a_linked_initiative_is_told_in_app_and_by_mail(
        self,
        with_email,
        tree,
        bet,
        lab,
        mailoutbox,
        django_capture_on_commit_callbacks,
    ):
        users = with_email
        made = product(lab, "qc", stage="live", owner=users["owner"], output_ports=ports("a"))
        initiative = services.node_create(
            tree=tree, parent=bet, title="Daily QC review", owner=users["editor"]
        )
        services.data_product_link(product=made, node=initiative, role="uses")

        self.deprecate(made, django_capture_on_commit_callbacks)

        [notice] = Notification.objects.filter(recipient=users["editor"])
        assert (notice.kind, notice.subject, notice.data_product) == (
            "deprecation",
            "Data product “Qc” is now deprecated",
            made,
        )
        assert "Note: Replaced by the LIMS feed" in notice.body
        assert "- Tree: Daily QC review" in notice.body
        assert notice.url == "/data-products/qc/"
        assert [(m.to, m.subject) for m in mailoutbox] == [
            (["editor@example.com"], "[Valuetree] Data product “Qc” is now deprecated")
        ]
        assert mailoutbox[0].body.endswith("/data-products/qc/")

    def test_owner_and_accountable_are_both_told_once_each(
        self, with_email, tree, bet, lab, mailoutbox, django_capture_on_commit_callbacks
    ):
        users = with_email
        made = product(lab, "qc")
        for title in ("First", "Second"):
            node = services.node_create(
                tree=tree,
                parent=bet,
                title=title,
                owner=users["editor"],
                accountable=users["viewer"],
            )
            services.data_product_link(product=made, node=node, role="uses")

        self.deprecate(made, django_capture_on_commit_callbacks)

        assert sorted(Notification.objects.values_list("recipient__username", flat=True)) == [
            "editor",
            "viewer",
        ]
        body = Notification.objects.get(recipient=users["editor"]).body
        assert "- Tree: First" in body and "- Tree: Second" in body
        assert sorted(m.to[0] for m in mailoutbox) == ["editor@example.com", "viewer@example.com"]

    @pytest.mark.parametrize("status", ["killed", "done"])
    def test_finished_initiatives_are_not_told(
        self, with_email, tree, bet, lab, mailoutbox, django_capture_on_commit_callbacks, status
    ):
        users = with_email
        made = product(lab, "qc")
        node = services.node_create(
            tree=tree, parent=bet, title="Old", owner=users["editor"], status=status
        )
        services.data_product_link(product=made, node=node, role="uses")

        self.deprecate(made, django_capture_on_commit_callbacks)

        assert Notification.objects.count() == 0
        assert mailoutbox == []

    def test_a_node_nobody_answers_for_falls_back_to_the_tree_owners(
        self, with_email, tree, bet, lab, mailoutbox, django_capture_on_commit_callbacks
    ):
        users = with_email
        services.membership_set(tree=tree, user=users["leadership"], role="owner")
        made = product(lab, "qc")
        services.data_product_link(product=made, node=bet, role="produces")

        self.deprecate(made, django_capture_on_commit_callbacks)

        assert sorted(Notification.objects.values_list("recipient__username", flat=True)) == [
            "leadership",
            "owner",
        ]
        assert len(mailoutbox) == 2

    def test_waiting_consumers_are_told(
        self, with_email, tree, bet, lab, mailoutbox, django_capture_on_commit_callbacks
    ):
        users = with_email
        made = product(lab, "qc")
        initiative = services.node_create(tree=tree, parent=bet, title="Waiting")
        services.consumer_interest_register(
            product=made, node=initiative, user=users["viewer"], team="Ward 3", purpose="Alerts"
        )

        self.deprecate(made, django_capture_on_commit_callbacks)

        [notice] = Notification.objects.filter(recipient=users["viewer"])
        assert notice.kind == "deprecation"
        assert "Your work relying on it" not in notice.body
        assert [m.to for m in mailoutbox] == [["viewer@example.com"]]

    def test_a_node_owner_who_cannot_read_the_tree_is_not_told_about_it(
        self, with_email, tree, bet, lab, mailoutbox, django_capture_on_commit_callbacks
    ):
        users = with_email
        made = product(lab, "qc")
        # The outsider owns a node of a tree they are not (or no longer) a member of.
        node = services.node_create(tree=tree, parent=bet, title="Secret", owner=users["outsider"])
        services.data_product_link(product=made, node=node, role="uses")

        self.deprecate(made, django_capture_on_commit_callbacks)

        assert inbox(users["outsider"]) == []
        assert all("Secret" not in m.body for m in mailoutbox)

    def test_a_deactivated_node_owner_is_not_told_about_it(
        self, with_email, tree, bet, lab, mailoutbox, django_capture_on_commit_callbacks
    ):
        """A deactivated account (someone who left) can open nothing: its mailbox, which
        may now be forwarded elsewhere, is not sent the private tree's titles."""
        users = with_email
        made = product(lab, "qc")
        node = services.node_create(tree=tree, parent=bet, title="Secret", owner=users["editor"])
        services.data_product_link(product=made, node=node, role="uses")
        users["editor"].is_active = False
        users["editor"].save(update_fields=["is_active"])

        self.deprecate(made, django_capture_on_commit_callbacks)

        assert inbox(users["editor"]) == []
        assert all("Secret" not in n.body for n in Notification.objects.all())
        assert all("Secret" not in m.body for m in mailoutbox)

    def test_no_mail_for_a_recipient_without_an_address(
        self, users, tree, bet, lab, mailoutbox, django_capture_on_commit_callbacks
    ):
        made = product(lab, "qc")
        node = services.node_create(tree=tree, parent=bet, title="I", owner=users["editor"])
        services.data_product_link(product=made, node=node, role="uses")

        self.deprecate(made, django_capture_on_commit_callbacks)

        assert inbox(users["editor"], "deprecation") == ["Data product “Qc” is now deprecated"]
        assert mailoutbox == []

    def test_no_mail_is_sent_when_the_transaction_rolls_back(self, with_email, tree, bet, lab):
        users = with_email
        made = product(lab, "qc")
        node = services.node_create(tree=tree, parent=bet, title="I", owner=users["editor"])
        services.data_product_link(product=made, node=node, role="uses")
        with pytest.raises(ValidationError):
            services.data_product_update(
                product=made, stage="deprecated", slug="board", by=users["owner"]
            )
        assert Notification.objects.count() == 0

    def test_a_mail_server_down_costs_the_mail_not_the_change(
        self, with_email, tree, bet, lab, settings, django_capture_on_commit_callbacks
    ):
        settings.EMAIL_BACKEND = "tests.valuetree.test_open_catalogue.BrokenBackend"
        users = with_email
        made = product(lab, "qc")
        node = services.node_create(tree=tree, parent=bet, title="I", owner=users["editor"])
        services.data_product_link(product=made, node=node, role="uses")

        self.deprecate(made, django_capture_on_commit_callbacks)

        assert DataProduct.objects.get(pk=made.pk).stage == "deprecated"
        assert inbox(users["editor"]) == ["Data product “Qc” is now deprecated"]


class BrokenBackend:
    """A mail backend whose server is unreachable."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


# --- The owners of similar products are told ---------------------------------------------


@pytest.mark.django_db
class TestSimilarOwnersAreTold:
    @pytest.fixture
    def first(self, with_email, domains):
        return services.data_product_create(
            slug="lab-patient-sample-turnaround",
            domain=domains["lab"],
            name="Patient sample turnaround",
            purpose="Time from sample collection to validated result for every patient sample",
            owner=with_email["owner"],
            output_ports=ports("sample_turnaround_daily"),
        )

    def create_twin(self, domains, owner, capture):
        with capture(execute=True):
            return services.data_product_create(
                slug="imaging-sample-turnaround-times",
                domain=domains["imaging"],
                name="Sample turnaround times",
                purpose="Time from sample collection to reported result for each sample",
                owner=owner,
                output_ports=ports("sample_turnaround_weekly"),
            )

    def test_the_owner_of_the_twin_is_told_once(
        self, with_email, domains, first, mailoutbox, django_capture_on_commit_callbacks
    ):
        users = with_email
        twin = self.create_twin(domains, users["editor"], django_capture_on_commit_callbacks)

        [notice] = Notification.objects.all()
        assert (notice.recipient, notice.kind, notice.data_product, notice.related_product) == (
            users["owner"],
            "similar_product",
            twin,
            first,
        )
        assert notice.subject.startswith(
            "“Sample turnaround times” looks like your “Patient sample turnaround” ("
        )
        assert "editor in Imaging is working on" in notice.body
        assert [m.to for m in mailoutbox] == [["owner@example.com"]]

        with django_capture_on_commit_callbacks(execute=True):
            services.data_product_update(
                product=twin,
                purpose="Time from sample collection to reported result for every sample",
                output_ports=ports("sample_turnaround_weekly", "sample_turnaround_daily"),
                by=users["editor"],
            )
        assert Notification.objects.count() == 1
        assert len(mailoutbox) == 1

    def test_your_own_similar_product_does_not_tell_you(
        self, with_email, domains, first, mailoutbox, django_capture_on_commit_callbacks
    ):
        self.create_twin(domains, with_email["owner"], django_capture_on_commit_callbacks)
        assert Notification.objects.count() == 0
        assert mailoutbox == []

    def test_an_ownerless_twin_tells_nobody(self, with_email, domains, first):
        first.owner = None
        first.save()
        twin = services.data_product_create(
            slug="imaging-sample-turnaround-times",
            domain=domains["imaging"],
            name="Sample turnaround times",
            owner=with_email["editor"],
        )
        assert twin.pk is not None
        assert Notification.objects.count() == 0

    def test_editing_into_a_twin_tells_the_owner(self, with_email, domains, first):
        users = with_email
        other = product(domains["imaging"], "scanner", owner=users["editor"])
        assert Notification.objects.count() == 0
        services.data_product_update(
            product=other,
            name="Sample turnaround",
            purpose="Time from sample collection to validated result for every sample",
            by=users["editor"],
        )
        assert inbox(users["owner"], "similar_product") == [
            "“Sample turnaround” looks like your “Patient sample turnaround” (89% alike)"
        ]

    def test_retiring_while_renaming_into_a_twin_tells_nobody(self, with_email, domains, first):
        users = with_email
        other = product(domains["imaging"], "scanner", owner=users["editor"])
        services.data_product_update(
            product=other, name="Patient sample turnaround", stage="retired", by=users["editor"]
        )
        assert DataProduct.objects.get(pk=other.pk).stage == "retired"
        assert Notification.objects.count() == 0

    def test_below_the_notify_score_nobody_is_told(self, with_email, domains, first):
        made = product(domains["imaging"], "backlog", name="Sample backlog", owner=None)
        [shown] = similar_products(Probe.of(made), exclude_pk=made.pk, min_score=0, limit=1)
        assert shown.score < NOTIFY_SCORE
        assert Notification.objects.count() == 0


# --- Duplicates --------------------------------------------------------------------------


@pytest.fixture
def pair(users, domains):
    """An original (owned by the tree owner) and its duplicate (the editor's)."""
    original = product(domains["lab"], "original", name="Sample turnaround", owner=users["owner"])
    duplicate = product(
        domains["imaging"], "duplicate", name="Turnaround times", owner=users["editor"]
    )
    return original, duplicate


@pytest.mark.django_db
class TestDuplicates:
    def test_mark_links_and_tells_the_original_owner(self, users, pair):
        original, duplicate = pair
        services.data_product_mark_duplicate(
            product=duplicate, original=original, by=users["editor"]
        )
        assert DataProduct.objects.get(pk=duplicate.pk).duplicate_of == original
        assert DataProduct.objects.get(pk=duplicate.pk).stage == "discovery"  # kept
        [notice] = Notification.objects.filter(kind="duplicate")
        assert (notice.recipient, notice.data_product, notice.related_product) == (
            users["owner"],
            original,
            duplicate,
        )
        assert notice.subject == (
            "“Turnaround times” was marked as a duplicate of your “Sample turnaround”"
        )
        assert notice.body.startswith("Marked by editor.")

    def test_marking_by_the_original_owner_tells_nobody(self, users, pair):
        original, duplicate = pair
        services.data_product_mark_duplicate(
            product=duplicate, original=original, by=users["owner"]
        )
        assert Notification.objects.filter(kind="duplicate").count() == 0

    @pytest.mark.parametrize(
        ("then", "stage", "moved"),
        [("keep", "discovery", None), ("retire", "retired", None), ("merge", "retired", {})],
    )
    def test_resolving_marks_then_keeps_retires_or_merges(self, users, pair, then, stage, moved):
        original, duplicate = pair
        result = services.data_product_resolve_duplicate(
            product=duplicate, original=original, then=then, by=users["editor"]
        )
        duplicate.refresh_from_db()
        assert (duplicate.duplicate_of, duplicate.stage) == (original, stage)
        assert result == (None if moved is None else {"links": 0, "interests": 0})

    def test_an_unknown_outcome_changes_nothing(self, users, pair):
        original, duplicate = pair
        with pytest.raises(ValidationError) as refused:
            services.data_product_resolve_duplicate(
                product=duplicate, original=original, then="archive", by=users["editor"]
            )
        assert refused.value.message_dict == {"then": ["Unknown outcome 'archive'."]}
        assert DataProduct.objects.get(pk=duplicate.pk).duplicate_of_id is None

    @pytest.mark.parametrize(
        ("case", "message"),
        [
            ("self", "A product cannot duplicate itself."),
            ("retired-original", "“Sample turnaround” is retired; pick a living one."),
            ("retired-duplicate", "This product is retired already."),
            (
                "cycle",
                "“Sample turnaround” is itself a duplicate of “{duplicate}”; pick that one.",
            ),
        ],
    )
    def test_refused_marks_change_nothing(self, users, pair, case, message):
        original, duplicate = pair
        if case == "self":
            original = duplicate
        elif case == "retired-original":
            services.data_product_transition(product=original, to_stage="retired", by=None)
            original.refresh_from_db()
        elif case == "retired-duplicate":
            services.data_product_transition(product=duplicate, to_stage="retired", by=None)
            duplicate.refresh_from_db()
        elif case == "cycle":
            services.data_product_mark_duplicate(product=original, original=duplicate, by=None)
            Notification.objects.all().delete()
        with pytest.raises(ValidationError) as refused:
            services.data_product_mark_duplicate(
                product=duplicate, original=original, by=users["editor"]
            )
        assert refused.value.message_dict == {
            "original": [message.format(duplicate=duplicate.name)]
        }
        assert DataProduct.objects.get(pk=duplicate.pk).duplicate_of_id is None
        assert Notification.objects.filter(kind="duplicate").count() == 0

    def test_a_longer_cycle_is_refused(self, users, pair, domains):
        original, duplicate = pair
        third = product(domains["hr"], "third")
        services.data_product_mark_duplicate(product=original, original=third, by=None)
        services.data_product_mark_duplicate(product=third, original=duplicate, by=None)
        with pytest.raises(ValidationError):
            services.data_product_mark_duplicate(product=duplicate, original=original, by=None)

    def test_merge_moves_what_the_original_lacks_then_retires(self, users, tree, bet, pair):
        original, duplicate = pair
        shared, own, waiting = (
            services.node_create(tree=tree, parent=bet, title=title)
            for title in ("Shared", "Own", "Waiting")
        )
        services.data_product_link(product=original, node=shared, role="uses")
        services.data_product_link(product=duplicate, node=shared, role="uses")
        services.data_product_link(product=duplicate, node=own, role="produces")
        services.data_product_link(product=duplicate, node=shared, role="produces")
        for target, node in ((original, shared), (duplicate, shared), (duplicate, waiting)):
            services.consumer_interest_register(
                product=target, node=node, user=users["viewer"], team="T", purpose="P"
            )
        services.data_product_mark_duplicate(
            product=duplicate, original=original, by=users["editor"]
        )

        moved = services.data_product_merge(product=duplicate, by=users["editor"])

        assert moved == {"links": 2, "interests": 1}
        assert sorted(original.links.values_list("node__title", "role")) == [
            ("Own", "produces"),
            ("Shared", "produces"),
            ("Shared", "uses"),
        ]
        assert list(duplicate.links.values_list("node__title", "role")) == [("Shared", "uses")]
        assert sorted(original.interests.values_list("node__title", flat=True)) == [
            "Shared",
            "Waiting",
        ]
        assert list(duplicate.interests.values_list("node__title", flat=True)) == ["Shared"]
        # The moves are in the history: each moved row was changed once, to the original.
        moved_interest = original.interests.get(node=waiting)
        assert list(
            moved_interest.history.order_by("history_id").values_list(
                "history_type", "data_product_id"
            )
        ) == [("+", duplicate.pk), ("~", original.pk)]
        moved_link = original.links.get(node=own)
        assert moved_link.history.latest("history_id").data_product_id == original.pk
        duplicate.refresh_from_db()
        last = duplicate.transitions.last()
        assert (duplicate.stage, last.to_stage, last.by, last.note) == (
            "retired",
            "retired",
            users["editor"],
            "Merged into “Sample turnaround” (original).",
        )

    def test_retire_duplicate_retires_it_as_it_is(self, users, tree, bet, pair):
        original, duplicate = pair
        node = services.node_create(tree=tree, parent=bet, title="Relying", owner=users["viewer"])
        services.data_product_link(product=duplicate, node=node, role="uses")
        services.data_product_mark_duplicate(product=duplicate, original=original, by=None)

        transition = services.data_product_retire_duplicate(product=duplicate, by=users["editor"])

        assert (transition.from_stage, transition.to_stage, transition.note) == (
            "discovery",
            "retired",
            "Duplicate of “Sample turnaround” (original).",
        )
        assert duplicate.links.count() == 1  # nothing moved
        [warning] = Notification.objects.filter(kind="deprecation")
        assert (warning.recipient, warning.related_product) == (users["viewer"], original)
        assert "Use “Sample turnaround” instead." in warning.body

    @pytest.mark.parametrize("then", ["merge", "retire"])
    def test_merge_or_retire_needs_a_mark_first(self, pair, then):
        _, duplicate = pair
        act = (
            services.data_product_merge
            if then == "merge"
            else services.data_product_retire_duplicate
        )
        with pytest.raises(ValidationError) as refused:
            act(product=duplicate, by=None)
        assert set(refused.value.message_dict) == {"duplicate_of"}
        assert DataProduct.objects.get(pk=duplicate.pk).stage == "discovery"


# --- Early consumers ---------------------------------------------------------------------


@pytest.fixture
def initiative(users, tree, bet):
    return services.node_create(tree=tree, parent=bet, title="Ward alerts")


@pytest.mark.django_db
class TestEarlyConsumers:
    def register(self, made, node, user, team="Ward 3"):
        return services.consumer_interest_register(
            product=made, node=node, user=user, team=f"  {team} ", purpose=" Faster alerts "
        )

    def test_register_tells_the_owner_and_shows_on_both_sides(self, users, lab, initiative):
        made = product(lab, "qc", owner=users["owner"])
        interest = self.register(made, initiative, users["editor"])
        assert (interest.team, interest.purpose, interest.user) == (
            "Ward 3",
            "Faster alerts",
            users["editor"],
        )
        [notice] = Notification.objects.filter(recipient=users["owner"])
        assert (notice.kind, notice.subject) == ("interest", "Ward 3 wants to consume “Qc”")
        assert notice.body == "For the initiative “Ward alerts” (Tree): Faster alerts"
        assert list(selectors.node_interests(node=initiative)) == [interest]
        assert list(
            selectors.product_interests(users["viewer"], product=made).values_list(
                "team", "visible"
            )
        ) == [("Ward 3", True)]

    def test_an_owner_who_cannot_read_the_tree_is_not_told_its_name_or_initiative(
        self, with_email, lab, initiative, mailoutbox, django_capture_on_commit_callbacks
    ):
        users = with_email
        made = product(lab, "qc", owner=users["outsider"])
        with django_capture_on_commit_callbacks(execute=True):
            self.register(made, initiative, users["editor"])

        [notice] = Notification.objects.filter(recipient=users["outsider"])
        assert notice.subject == "Ward 3 wants to consume “Qc”"
        assert notice.body == "For an initiative in a tree you cannot see: Faster alerts"
        [mail] = mailoutbox
        assert "Ward alerts" not in mail.body + mail.subject
        assert "Tree" not in mail.body + mail.subject
        assert mail.body.startswith("For an initiative in a tree you cannot see: Faster alerts")

    @pytest.mark.parametrize(("role", "visible"), [("leadership", True), ("outsider", False)])
    def test_visible_only_to_who_reads_the_tree(self, users, lab, initiative, role, visible):
        made = product(lab, "qc")
        self.register(made, initiative, users["editor"])
        [interest] = selectors.product_interests(users[role], product=made)
        assert interest.visible is visible

    def test_the_owner_registering_is_not_told(self, users, lab, initiative):
        made = product(lab, "qc", owner=users["owner"])
        self.register(made, initiative, users["owner"])
        assert Notification.objects.count() == 0

    @pytest.mark.parametrize("stage", ["discovery", "design", "build"])
    def test_planned_and_built_products_take_consumers(self, users, lab, initiative, stage):
        made = product(lab, "qc", stage=stage)
        assert self.register(made, initiative, users["editor"]).pk is not None

    @pytest.mark.parametrize("stage", ["live", "deprecated", "retired"])
    def test_other_stages_are_refused(self, users, lab, initiative, stage):
        made = product(lab, "qc", stage=stage, owner=users["owner"], output_ports=ports("a"))
        with pytest.raises(ValidationError) as refused:
            self.register(made, initiative, users["editor"])
        assert set(refused.value.message_dict) == {"data_product"}
        assert f"“Qc” is {stage}" in refused.value.message_dict["data_product"][0]
        assert ConsumerInterest.objects.count() == 0

    def test_a_bet_is_refused(self, users, lab, bet):
        made = product(lab, "qc", owner=users["owner"])
        with pytest.raises(ValidationError) as refused:
            self.register(made, bet, users["editor"])
        assert refused.value.message_dict == {"node": ["Pick an initiative, not a bet."]}
        assert Notification.objects.count() == 0

    def test_registering_twice_is_refused(self, users, lab, initiative):
        made = product(lab, "qc", owner=users["owner"])
        self.register(made, initiative, users["editor"])
        with pytest.raises(ValidationError) as refused:
            self.register(made, initiative, users["owner"], team="Another team")
        assert refused.value.message_dict == {
            "node": ["“Ward alerts” is already registered as waiting for this product."]
        }
        assert ConsumerInterest.objects.count() == 1

    def test_an_empty_team_is_refused(self, users, lab, initiative):
        made = product(lab, "qc")
        with pytest.raises(ValidationError) as refused:
            self.register(made, initiative, users["editor"], team="   ")
        assert set(refused.value.message_dict) == {"team"}
        assert ConsumerInterest.objects.count() == 0

    def test_withdraw(self, users, lab, initiative):
        made = product(lab, "qc")
        interest = self.register(made, initiative, users["editor"])
        services.consumer_interest_withdraw(interest=interest)
        assert list(selectors.node_interests(node=initiative)) == []

    def test_initiatives_for_interest_are_those_of_trees_you_edit(self, users, tree, bet):
        keep = services.node_create(tree=tree, parent=bet, title="Alive")
        services.node_create(tree=tree, parent=bet, title="Killed", status="killed")
        titles = {
            role: [n.title for n in selectors.initiatives_for_interest(users[role])]
            for role in ("owner", "editor", "viewer", "leadership", "outsider")
        }
        assert titles == {
            "owner": [keep.title],
            "editor": [keep.title],
            "viewer": [],
            "leadership": [],
            "outsider": [],
        }


# --- The discovery board -----------------------------------------------------------------


@pytest.mark.django_db
class TestBoard:
    def test_only_planned_products_with_filters(self, users, catalogue):
        for slug, stage in [
            ("lab-analyser-qc", "design"),
            ("hr-sick-leave", "build"),
            ("marketing-web-sessions", "retired"),
            ("finance-cash-flow-forecast", "design"),
        ]:
            services.data_product_transition(product=catalogue[slug], to_stage=stage, by=None)
        board = selectors.discovery_board(users["viewer"])
        slugs = [p.slug for p in board]
        assert len(slugs) == 18
        assert "hr-sick-leave" not in slugs and "marketing-web-sessions" not in slugs
        assert [p.slug for p in selectors.discovery_board(users["viewer"], stage="design")] == [
            "lab-analyser-qc",
            "finance-cash-flow-forecast",
        ]
        finance = Domain.objects.get(slug="finance")
        assert sorted(
            p.slug for p in selectors.discovery_board(users["viewer"], domain=finance)
        ) == [
            "finance-cash-flow-forecast",
            "finance-cost-centre-budget",
            "finance-monthly-headcount",
            "finance-supplier-invoice-ledger",
        ]
        assert [
            p.slug
            for p in selectors.discovery_board(
                users["viewer"], domain=finance, stage="design", query="cash"
            )
        ] == ["finance-cash-flow-forecast"]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("turnaround", ["lab-patient-sample-turnaround", "imaging-sample-turnaround-times"]),
            ("SUPPLIERS due", ["supply-supplier-invoices", "finance-supplier-invoice-ledger"]),
            ("headcount_by_department", ["finance-monthly-headcount"]),  # a port name
            ("turnaround invoice", []),  # every word must match
        ],
    )
    def test_search_matches_every_word(self, users, catalogue, query, expected):
        board = selectors.discovery_board(users["viewer"], query=query)
        assert sorted(p.slug for p in board) == sorted(expected)

    @pytest.mark.skipif(
        connection.vendor != "postgresql", reason="full-text search is PostgreSQL's"
    )
    def test_on_postgresql_search_is_full_text_and_ranked(self, users, lab):
        # "counting" is in no text, but it stems to "count", as "Counts" does.
        counts = product(lab, "volumes", purpose="Counts the tests run per day.")
        named = product(lab, "test-counts", name="Test counts")
        product(lab, "other", purpose="Nothing alike.")
        found = selectors.discovery_board(users["viewer"], query="counting")
        assert {p.slug for p in found} == {"volumes", "test-counts"}
        # A match in the name (weight A) ranks above one in the purpose (weight B).
        assert [p.slug for p in found] == [named.slug, counts.slug]

    def test_serves_only_names_readable_trees(self, users, tree, bet, lab):
        made = product(lab, "qc")
        mine = services.node_create(tree=tree, parent=bet, title="Mine")
        hidden_tree = services.tree_create(
            owner=users["outsider"], name="Hidden", slug="hidden", vision="v"
        )
        hidden_goal = services.node_create(tree=hidden_tree, parent=None, title="Hidden goal")
        services.data_product_link(product=made, node=mine, role="uses")
        services.data_product_link(product=made, node=hidden_goal, role="produces")
        services.consumer_interest_register(
            product=made, node=mine, user=users["editor"], team="T", purpose="P"
        )
        [row] = selectors.discovery_board(users["viewer"])
        assert [link.node.title for link in row.served] == ["Mine"]
        assert row.served_elsewhere == 1
        assert [i.visible for i in row.interests.all()] == [True]
        [row] = selectors.discovery_board(users["outsider"])
        assert [link.node.title for link in row.served] == ["Hidden goal"]
        assert row.served_elsewhere == 1
        assert [i.visible for i in row.interests.all()] == [False]

    @pytest.mark.parametrize("size", [5, 50])
    def test_query_count_does_not_grow(
        self, users, tree, bet, lab, size, django_assert_max_num_queries
    ):
        initiative = services.node_create(tree=tree, parent=bet, title="Initiative")
        owners = [make_user(f"team-{n}") for n in range(3)]
        for n in range(size):
            made = product(
                lab,
                f"p{n}",
                stage="design" if n % 2 else "discovery",
                owner=owners[n % 3],
                output_ports=ports(f"port_{n}_a", f"port_{n}_b"),
            )
            DataProductLink.objects.create(data_product=made, node=initiative, role="uses")
            DataProductLink.objects.create(data_product=made, node=bet, role="produces")
            ConsumerInterest.objects.create(
                data_product=made, node=initiative, user=owners[n % 3], team="T", purpose="P"
            )
        with django_assert_max_num_queries(4):
            board = selectors.discovery_board(users["viewer"])
            seen = [
                (
                    p.domain.name,
                    p.owner.username,
                    [port.name for port in p.output_ports.all()],
                    [(link.node.tree.slug, link.node.title) for link in p.served],
                    p.served_elsewhere,
                    [(i.user.username, i.node.tree.slug, i.visible) for i in p.interests.all()],
                )
                for p in board
            ]
        assert len(seen) == size
        assert all(len(row[3]) == 2 and len(row[5]) == 1 for row in seen)


# --- Orphans and initiatives on ending products -------------------------------------------


@pytest.mark.django_db
class TestOrphans:
    def test_products_serving_no_living_initiative(self, users, tree, bet, lab):
        goal = bet.parent
        alive = services.node_create(tree=tree, parent=bet, title="Alive", status="active")
        done = services.node_create(tree=tree, parent=bet, title="Done", status="done")
        killed = services.node_create(tree=tree, parent=bet, title="Killed", status="killed")
        made = {slug: product(lab, slug) for slug in ("a-alone", "b-goal", "c-killed", "d-alive")}
        made["e-done"] = product(lab, "e-done")
        made["f-retired"] = product(lab, "f-retired", stage="retired")
        services.data_product_link(product=made["b-goal"], node=goal, role="uses")
        services.data_product_link(product=made["c-killed"], node=killed, role="uses")
        services.data_product_link(product=made["d-alive"], node=alive, role="uses")
        services.data_product_link(product=made["d-alive"], node=killed, role="uses")
        services.data_product_link(product=made["e-done"], node=done, role="produces")
        assert [p.slug for p in selectors.orphan_products()] == ["a-alone", "b-goal", "c-killed"]

    def test_orphans_are_ordered_by_domain_then_name(self, catalogue):
        orphans = list(selectors.orphan_products())
        assert len(orphans) == 20
        assert [(p.domain.name, p.name) for p in orphans] == sorted(
            (p.domain.name, p.name) for p in orphans
        )
        assert orphans[0].domain.name == "Finance"

    def test_initiatives_on_ending_products(self, users, tree, bet, lab):
        other_tree = services.tree_create(
            owner=users["outsider"], name="Other", slug="other", vision="v"
        )
        other_goal = services.node_create(tree=other_tree, parent=None, title="G")
        other_bet = services.node_create(tree=other_tree, parent=other_goal, title="B")
        nodes = {
            "proposed": services.node_create(tree=tree, parent=bet, title="Proposed"),
            "active": services.node_create(tree=tree, parent=bet, title="Active", status="active"),
            "done": services.node_create(tree=tree, parent=bet, title="Done", status="done"),
            "hidden": services.node_create(tree=other_tree, parent=other_bet, title="Hidden"),
        }
        successor = product(lab, "successor")
        ending = product(lab, "ending", stage="deprecated")
        services.data_product_mark_duplicate(product=ending, original=successor, by=None)
        retired = product(lab, "retired", stage="retired")
        living = product(lab, "living")
        for node in nodes.values():
            services.data_product_link(product=ending, node=node, role="uses")
            services.data_product_link(product=living, node=node, role="uses")
        services.data_product_link(product=retired, node=nodes["active"], role="produces")
        services.data_product_link(product=ending, node=bet, role="uses")  # not an initiative

        def seen(role):
            return [
                (
                    link.node.title,
                    link.data_product.slug,
                    getattr(link.data_product.duplicate_of, "slug", None),
                )
                for link in selectors.initiatives_on_ending_products(users[role])
            ]

        assert seen("viewer") == [
            ("Active", "ending", "successor"),
            ("Active", "retired", None),
            ("Proposed", "ending", "successor"),
        ]
        assert seen("leadership") == [
            ("Hidden", "ending", "successor"),
            ("Active", "ending", "successor"),
            ("Active", "retired", None),
            ("Proposed", "ending", "successor"),
        ]
        assert seen("outsider") == [("Hidden", "ending", "successor")]


# --- Notifications -------------------------------------------------------------------------


@pytest.mark.django_db
class TestNotifications:
    def test_mark_read_only_touches_your_own(self, users, lab):
        made = product(lab, "qc")
        mine = services.notify(recipients=[users["owner"].pk] * 2, kind="interest", subject="a")
        services.notify(recipients=[users["owner"].pk], kind="interest", subject="b")
        theirs = services.notify(
            recipients=[users["editor"].pk], kind="interest", subject="c", data_product=made
        )
        assert len(mine) == 1  # a recipient named twice is told once
        assert theirs[0].url == "/data-products/qc/"
        assert selectors.unread_notification_count(users["owner"]) == 2
        assert services.notifications_mark_read(user=users["owner"], ids=[theirs[0].pk]) == 0
        assert services.notifications_mark_read(user=users["owner"], ids=[mine[0].pk]) == 1
        assert selectors.unread_notification_count(users["owner"]) == 1
        assert services.notifications_mark_read(user=users["owner"]) == 1
        assert selectors.unread_notification_count(users["owner"]) == 0
        assert selectors.unread_notification_count(users["editor"]) == 1
        assert [n.subject for n in selectors.notifications_for(users["owner"])] == ["b", "a"]


# --- Reserved slugs ------------------------------------------------------------------------


@pytest.mark.django_db
class TestReservedSlugs:
    @pytest.mark.parametrize("slug", sorted(services.RESERVED_PRODUCT_SLUGS))
    def test_create_with_a_reserved_slug_is_refused(self, lab, slug):
        with pytest.raises(ValidationError) as refused:
            product(lab, slug)
        assert refused.value.message_dict == {
            "slug": [f"“{slug}” is reserved; choose another slug."]
        }
        assert not DataProduct.objects.exists()

    def test_update_to_a_reserved_slug_is_refused(self, lab):
        made = product(lab, "qc")
        with pytest.raises(ValidationError) as refused:
            services.data_product_update(product=made, slug="board")
        assert set(refused.value.message_dict) == {"slug"}
        assert DataProduct.objects.get(pk=made.pk).slug == "qc"

    def test_reserved_slugs_cover_the_api_routes_beside_a_product(self):
        assert {"board", "similar", "orphans", "import"} <= services.RESERVED_PRODUCT_SLUGS
