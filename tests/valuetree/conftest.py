"""Fixtures shared by the valuetree page tests."""

from __future__ import annotations

import pytest

from valuetree import services


@pytest.fixture
def domains(db):
    return {
        "lab": services.domain_create(name="Laboratory", slug="lab"),
        "finance": services.domain_create(name="Finance", slug="finance"),
    }


@pytest.fixture
def login(client, users):
    """The test client logged in as a role of ``users`` (or any user given)."""

    def as_user(role_or_user):
        user = users[role_or_user] if isinstance(role_or_user, str) else role_or_user
        client.force_login(user)
        return client

    return as_user
