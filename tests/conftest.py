from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import make_role_users, make_tree


@pytest.fixture
def users(db):
    return make_role_users()


@pytest.fixture
def tree(users):
    return make_tree(users)


@pytest.fixture
def client_for():
    """An API client logged in as the given user (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
