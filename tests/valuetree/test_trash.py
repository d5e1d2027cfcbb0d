"""Soft delete: a deleted subtree waits 30 days in its tree's trash and can be
restored from the page and the API (issue 15)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from outcomes.models import Measure
from tests.factories import make_metric
from valuetree import services, trash
from valuetree.models import DataProductLink, Node, TrashedSubtree


@pytest.fixture
def shape(tree, users, domains):
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    first = services.node_create(tree=tree, parent=goal, title="First bet")
    bet = services.node_create(
        tree=tree, parent=goal, title="Bet", hypothesis="We believe", owner=users["editor"]
    )
    services.node_create(tree=tree, parent=goal, title="Last bet")
    initiative = services.node_create(tree=tree, parent=bet, title="Initiative")
    metric = make_metric(tree, name="Samples")
    Measure.objects.create(
        node=initiative,
        name="Throughput",
        direction="increase",
        baseline_value=1,
        baseline_date=dt.date(2026, 1, 1),
        target_value=2,
        target_date=dt.date(2027, 1, 1),
        metric=metric,
    )
    product = services.data_product_create(name="Events", slug="events", domain=domains["lab"])
    services.data_product_link(product=product, node=initiative, role="uses")
    return {"goal": goal, "first": first, "bet": bet, "initiative": initiative, "metric": metric}


def _assert_restored(tree, shape, users):
    bet = Node.objects.get(tree=tree, title="Bet")
    assert bet.parent_id == shape["goal"].pk
    assert list(
        Node.objects.filter(parent=shape["goal"])
        .order_by("position")
        .values_list("title", flat=True)
    ) == ["First bet", "Bet", "Last bet"]
    assert (bet.hypothesis, bet.owner) == ("We believe", users["editor"])
    initiative = Node.objects.get(parent=bet)
    measure = Measure.objects.get(node=initiative)
    assert (measure.name, measure.metric_id) == ("Throughput", shape["metric"].pk)
    assert DataProductLink.objects.filter(node=initiative, role="uses").exists()
    assert not TrashedSubtree.objects.exists()


@pytest.mark.django_db
class TestPages:
    def test_delete_then_restore_from_the_trash(self, client, users, tree, shape):
        client.force_login(users["editor"])
        response = client.post(f"/nodes/{shape['bet'].pk}/delete/")
        assert response.status_code == 302
        assert not Node.objects.filter(title__in=["Bet", "Initiative"]).exists()
        page = client.get(f"/trees/{tree.slug}/trash/").content.decode()
        assert "Bet" in page and "1 below it" in page
        item = TrashedSubtree.objects.get()
        response = client.post(f"/trees/{tree.slug}/trash/", {"item": item.pk})
        assert response.status_code == 302
        _assert_restored(tree, shape, users)

    def test_viewer_sees_but_cannot_restore(self, client, users, tree, shape):
        trash.node_trash(node=shape["bet"], user=users["editor"])
        client.force_login(users["viewer"])
        page = client.get(f"/trees/{tree.slug}/trash/").content.decode()
        assert "Bet" in page and "Restore" not in page
        item = TrashedSubtree.objects.get()
        assert client.post(f"/trees/{tree.slug}/trash/", {"item": item.pk}).status_code == 403
        assert TrashedSubtree.objects.exists()

    def test_bad_item_is_404(self, client, users, tree, shape):
        client.force_login(users["editor"])
        assert client.post(f"/trees/{tree.slug}/trash/", {"item": "x"}).status_code == 404


@pytest.mark.django_db
class TestApi:
    def test_delete_list_restore(self, client_for, users, tree, shape):
        editor = client_for(users["editor"])
        refused = editor.delete(f"/api/nodes/{shape['bet'].pk}/")
        assert refused.status_code == 400  # has a descendant: cascade must be asked for
        assert not TrashedSubtree.objects.exists()
        assert editor.delete(f"/api/nodes/{shape['bet'].pk}/?cascade=true").status_code == 204
        listed = client_for(users["viewer"]).get(f"/api/trees/{tree.slug}/trash/").json()
        listed = listed["results"]  # paginated, like every list of the API
        assert [(i["title"], i["descendant_count"], i["deleted_by"]) for i in listed] == [
            ("Bet", 1, "editor")
        ]
        url = f"/api/trees/{tree.slug}/trash/{listed[0]['id']}/restore/"
        assert client_for(users["viewer"]).post(url).status_code == 403
        response = editor.post(url)
        assert response.status_code == 201, response.content
        assert response.json()["title"] == "Bet"
        _assert_restored(tree, shape, users)
        assert editor.post(url).status_code == 404


@pytest.mark.django_db
class TestRules:
    def test_older_than_thirty_days_cannot_come_back(self, users, tree, shape):
        item = trash.node_trash(node=shape["bet"], user=users["editor"])
        later = timezone.now() + dt.timedelta(days=31)
        assert trash.trash_for_tree(tree=tree, now=later) == []
        with pytest.raises(Exception, match="30 days"):
            trash.trash_restore(item=item, now=later)
        assert trash.trash_purge(now=later) == 1

    def test_a_child_whose_parent_was_deleted_waits_for_the_parent(
        self, client, users, tree, shape
    ):
        child = trash.node_trash(node=shape["initiative"], user=users["editor"])
        parent = trash.node_trash(node=shape["bet"], user=users["editor"])
        child.refresh_from_db()
        with pytest.raises(Exception, match="restore the parent first"):
            trash.trash_restore(item=child)
        client.force_login(users["editor"])
        html = client.get(f"/trees/{tree.slug}/trash/").content.decode()
        assert "is in the trash too: restore that first" in html
        trash.trash_restore(item=parent)
        assert Node.objects.filter(title="Bet").exists()
        # ...and then it can come back, under the restored copy of its parent.
        child.refresh_from_db()
        restored = trash.trash_restore(item=child)
        assert restored.parent == Node.objects.get(title="Bet")
        assert not TrashedSubtree.objects.exists()

    def test_a_child_waits_for_a_grandparent_restored_with_its_parent(self, users, tree, shape):
        child = trash.node_trash(node=shape["initiative"], user=users["editor"])
        goal = trash.node_trash(node=shape["goal"], user=users["editor"])
        trash.trash_restore(item=goal)
        child.refresh_from_db()
        assert trash.trash_restore(item=child).parent == Node.objects.get(title="Bet")

    def test_a_child_goes_back_under_its_parent_wherever_it_moved(self, users, tree, shape):
        child = trash.node_trash(node=shape["initiative"], user=users["editor"])
        other = services.node_create(tree=tree, parent=None, title="Other goal")
        services.node_move(node=shape["bet"], parent=other)
        assert trash.trash_restore(item=child).parent.parent == other

    def test_restoring_twice_restores_once(self, users, tree, shape):
        item = trash.node_trash(node=shape["bet"], user=users["editor"])
        stale = TrashedSubtree.objects.get(pk=item.pk)  # a second tab's copy
        trash.trash_restore(item=item)
        with pytest.raises(Exception, match="restored already"):
            trash.trash_restore(item=stale)
        assert Node.objects.filter(title="Bet").count() == 1


@pytest.mark.django_db
class TestVerdictsAfterRestore:
    """A restored measure is a new row: it gets its verdict when the restore commits,
    not at the next value or the nightly run."""

    @pytest.fixture
    def evaluated(self, shape):
        from outcomes import pulling
        from outcomes.evaluation import measures_evaluate
        from outcomes.models import Verdict

        now, today = timezone.now(), timezone.localdate()
        pulling.observations_write(
            metric=shape["metric"],
            points=[
                pulling.Point(now - dt.timedelta(days=30 * (4 - i)), 1 + i / 10) for i in range(5)
            ],
            run=None,
            pulled_at=now,
        )
        measure = Measure.objects.get(node=shape["initiative"])
        Measure.objects.filter(pk=measure.pk).update(
            baseline_date=today - dt.timedelta(days=120),
            target_date=today + dt.timedelta(days=240),
        )
        measures_evaluate(measure_ids=[measure.pk])
        verdict = Verdict.objects.get(measure=measure, is_current=True)
        assert verdict.status not in ("no_data", "too_early")  # something to get back
        return verdict

    def _restored_verdict(self):
        from outcomes.models import Verdict

        measure = Measure.objects.get(node__title="Initiative")
        return Verdict.objects.filter(measure=measure, is_current=True).first()

    def test_the_page_restore_shows_the_verdict_at_once(
        self, client, users, tree, shape, evaluated, django_capture_on_commit_callbacks
    ):
        client.force_login(users["editor"])
        trash.node_trash(node=shape["bet"], user=users["editor"])
        item = TrashedSubtree.objects.get()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/trees/{tree.slug}/trash/", {"item": item.pk})
        assert response.status_code == 302
        verdict = self._restored_verdict()
        assert verdict is not None
        assert (verdict.status, verdict.progress) == (evaluated.status, evaluated.progress)
        bet = Node.objects.get(title="Bet")
        page = client.get(f"/nodes/{bet.pk}/").content.decode()
        assert f'data-verdict="{evaluated.status}"' in page

    def test_the_api_restore_too(
        self, client_for, users, tree, shape, evaluated, django_capture_on_commit_callbacks
    ):
        item = trash.node_trash(node=shape["bet"], user=users["editor"])
        url = f"/api/trees/{tree.slug}/trash/{item.pk}/restore/"
        with django_capture_on_commit_callbacks(execute=True):
            assert client_for(users["editor"]).post(url).status_code == 201
        assert self._restored_verdict().status == evaluated.status

    def test_nothing_is_evaluated_before_the_commit(
        self, users, tree, shape, evaluated, django_capture_on_commit_callbacks
    ):
        item = trash.node_trash(node=shape["bet"], user=users["editor"])
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            trash.trash_restore(item=item)
        assert self._restored_verdict() is None
        assert len(callbacks) == 1
        callbacks[0]()
        assert self._restored_verdict().status == evaluated.status
