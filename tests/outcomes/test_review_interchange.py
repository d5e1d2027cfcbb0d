"""Decisions and learnings in the tree document: export → import → export is exact."""

from __future__ import annotations

import pytest

from outcomes.models import Decision, Learning
from outcomes.reviews import services
from tests.outcomes import test_reviews
from valuetree import interchange
from valuetree.interchange import ImportFailed

pytestmark = pytest.mark.django_db
shape = test_reviews.shape


def test_round_trip_is_exact(tree, shape, users):
    first = services.decision_create(
        node=shape["keep"], kind="persevere", rationale="Give it a quarter", by=users["owner"]
    )
    services.decision_create(
        node=shape["keep"],
        kind="done",
        rationale="Reorders doubled",
        by=users["editor"],
        supersedes=first,
        evidence=[
            {"kind": "link", "url": "https://example.com/r", "title": "Report", "quote": "x2"}
        ],
    )
    services.decision_create(
        node=shape["drop"],
        kind="pivot",
        rationale="E-mail, not fax",
        by=users["owner"],
        pivot_title="E-mail orders",
    )
    services.learning_create(
        tree=tree, by=users["editor"], kind="invalidated", text="Nobody faxes", node=shape["drop"]
    )
    services.learning_create(tree=tree, by=None, kind="process", text="Review monthly")

    document = interchange.tree_export(tree=tree)
    keep = document["goals"][0]["children"][0]["children"][0]
    assert [d["kind"] for d in keep["decisions"]] == ["persevere", "done"]
    assert keep["decisions"][1]["supersedes"] == 0
    assert keep["decisions"][0]["evidence"][0]["kind"] == "verdict"
    fax = document["goals"][0]["children"][0]["children"][1]
    assert fax["decisions"][0]["pivot_to"] == "goals[0].children[0].children[2]"
    assert [row["text"] for row in document["learnings"]] == ["Review monthly"]

    # The operator's import (manage.py) keeps who decided; see tests/test_who.py.
    copy = interchange.tree_import(
        {**document, "slug": "copy"}, owner=users["owner"], operator=True
    )
    again = interchange.tree_export(tree=copy)
    assert {**again, "slug": tree.slug} == document
    assert Decision.objects.filter(tree=copy).count() == 3
    assert Learning.objects.filter(tree=copy).count() == 2


def test_a_pivot_to_a_missing_path_is_refused_and_writes_nothing(users):
    document = {
        "version": 1,
        "slug": "broken",
        "name": "Broken",
        "vision": "V",
        "goals": [
            {
                "title": "G",
                "children": [
                    {
                        "title": "B",
                        "decisions": [
                            {
                                "kind": "pivot",
                                "rationale": "r",
                                "at": "2026-01-01T00:00:00+00:00",
                                "pivot_to": "goals[0].children[5]",
                                "by": "nobody-here",
                            }
                        ],
                    }
                ],
            }
        ],
    }
    with pytest.raises(ImportFailed) as failed:
        interchange.tree_import(document, owner=users["owner"])
    paths = {problem.path for problem in failed.value.problems}
    assert paths == {
        "goals[0].children[0].decisions[0].pivot_to",
        "goals[0].children[0].decisions[0].by",
    }
    assert Decision.objects.count() == 0
