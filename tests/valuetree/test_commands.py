from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token


@pytest.mark.django_db
def test_issue_token_prints_a_working_token(users, client, capsys):
    call_command("issue_token", "editor")
    key = capsys.readouterr().out.strip()
    assert Token.objects.get(user=users["editor"]).key == key
    response = client.get("/api/trees/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200


@pytest.mark.django_db
def test_issue_token_is_stable_until_rotated(users, capsys):
    call_command("issue_token", "editor")
    first = capsys.readouterr().out.strip()
    call_command("issue_token", "editor")
    assert capsys.readouterr().out.strip() == first
    call_command("issue_token", "editor", "--rotate")
    rotated = capsys.readouterr().out.strip()
    assert rotated != first
    assert list(Token.objects.filter(user=users["editor"]).values_list("key", flat=True)) == [
        rotated
    ]


@pytest.mark.django_db
def test_issue_token_for_unknown_user_fails_clearly(db):
    with pytest.raises(CommandError, match="No user named 'ghost'."):
        call_command("issue_token", "ghost")
    assert Token.objects.count() == 0


@pytest.mark.django_db
def test_export_of_unknown_tree_fails_clearly(db):
    with pytest.raises(CommandError, match="No tree with slug 'nope'."):
        call_command("export_tree", "nope")
