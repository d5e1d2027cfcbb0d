"""Schemathesis against a live server: every operation of the published OpenAPI schema,
as a tree owner and as a viewer, answers no 5xx and nothing the schema does not
describe (issue 14 §7).

The run is reproducible: deterministic generation (no seed, no example database),
a fixed number of examples per operation, one worker. Every check runs except
``positive_data_acceptance``: it expects any input that fits the schema to be accepted,
but business rules no schema states (a slug already taken, a node of another tree, a
target date before the baseline) rightly answer 400. Its mirror image,
``negative_data_rejection`` (input that breaks the schema must be refused), runs.

A failure prints schemathesis's report, with a `curl` line to reproduce each case.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from outcomes import evaluation
from outcomes.pulling import observations_push
from outcomes.services import measure_create
from tests.factories import make_metric
from valuetree import services
from valuetree.management.commands.load_demo import load_demo
from valuetree.models import Node, ValueTree

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "3"))
# The demo's people: an owner of its tree, and a viewer of it, with the phases each
# runs. The coverage phase (boundary and type-violating values for every parameter,
# several minutes on 2 busy cores) runs as the owner, who reaches every operation's
# validation; the viewer, refused most writes, gets the generated examples only.
CALLERS = {
    "owner": ("demo", "examples,coverage,fuzzing"),
    "viewer": ("afischer", "examples,fuzzing"),
}


def api_token(user) -> str:
    """A key the API accepts in `Authorization: Token <key>` (the one place to change
    when the token scheme changes)."""
    return services.api_token_create(user=user, name="API fuzzer")[1]


@pytest.fixture
def demo_world(transactional_db):
    """The demo organisation, plus a push metric with values and a verdict, so that
    the fuzzer meets real rows behind the list operations."""
    load_demo(password="fuzz-demo-password")
    tree = ValueTree.objects.get(slug="helix-diagnostics")
    node = Node.objects.filter(tree=tree, kind="initiative").first()
    metric = make_metric(tree, source_name="Fuzz pushes", name="Fuzz metric")
    measure = measure_create(
        node=node,
        name="Fuzzed measure",
        direction="increase",
        baseline_value=0,
        baseline_date="2026-01-01",
        target_value=10,
        target_date="2026-12-31",
        metric=metric,
    )
    observations_push(metric=metric, raw_points=[("2026-02-01", 2), ("2026-03-01", 3)])
    evaluation.measures_evaluate(measure_ids=[measure.pk])
    return tree


@pytest.mark.fuzz
@pytest.mark.parametrize("role", sorted(CALLERS))
def test_the_api_answers_as_its_schema_says(demo_world, live_server, role, tmp_path):
    username, phases = CALLERS[role]
    user = get_user_model().objects.get(username=username)
    command = [
        SCHEMATHESIS,
        "run",
        f"{live_server.url}/api/schema/?format=json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--generation-deterministic",
        "--workers",
        "1",
        "--phases",
        phases,
        "--request-timeout",
        "30",
        "--header",
        f"Authorization: Token {api_token(user)}",
        "--no-color",
        "--output-truncate",
        "true",
    ]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"schemathesis as the tree's {role}:\n{report[-20000:]}"
