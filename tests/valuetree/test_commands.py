from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from valuetree.models import ApiToken


@pytest.mark.django_db
def test_issue_token_prints_a_working_token_and_stores_only_its_digest(users, client, capsys):
    call_command("issue_token", "editor")
    key = capsys.readouterr().out.strip()
    [token] = ApiToken.objects.filter(user=users["editor"])
    assert key.startswith("vt_")
    assert (token.name, token.token_key) == ("issue_token", key[:15])
    assert key not in token.digest
    response = client.get("/api/trees/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200


@pytest.mark.django_db
def test_issue_token_issues_a_new_token_each_time_and_rotate_revokes_the_named_ones(
    users, client, capsys
):
    call_command("issue_token", "editor")
    first = capsys.readouterr().out.strip()
    call_command("issue_token", "editor", "--name", "ci")
    ci = capsys.readouterr().out.strip()
    call_command("issue_token", "editor", "--rotate")
    rotated = capsys.readouterr().out.strip()
    assert len({first, ci, rotated}) == 3
    assert sorted(ApiToken.objects.values_list("name", flat=True)) == ["ci", "issue_token"]
    for key, status in ((first, 401), (ci, 200), (rotated, 200)):
        answer = client.get("/api/trees/", HTTP_AUTHORIZATION=f"Token {key}")
        assert answer.status_code == status


@pytest.mark.django_db
def test_issue_token_refuses_a_lifetime_past_the_maximum(users, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    with pytest.raises(CommandError, match="from 1 to 30 days"):
        call_command("issue_token", "editor", "--days", "31")
    assert ApiToken.objects.count() == 0


@pytest.mark.django_db
def test_issue_token_for_unknown_user_fails_clearly(db):
    with pytest.raises(CommandError, match="No user named 'ghost'."):
        call_command("issue_token", "ghost")
    assert ApiToken.objects.count() == 0


@pytest.mark.django_db
def test_export_of_unknown_tree_fails_clearly(db):
    with pytest.raises(CommandError, match="No tree with slug 'nope'."):
        call_command("export_tree", "nope")
