"""API token authentication: django-rest-knox's, with one indexed query per request.

knox 5.1 (`knox.auth.TokenAuthentication.authenticate_credentials`) finds the rows whose
`token_key` is the token's first 15 characters, then for each calls `_cleanup_token`,
which reads *every* token of the user (`user.auth_token_set.all()`) to delete the
expired ones, on every request, and deletes the presented token itself if it expired
(a write on a read request). Measured on a push (bench/push_profile.py): one more query
and about a tenth of the request's CPU.

Here the same lookup by prefix asks the database only for the tokens that still work
(expiry null or in the future), joined to their user; the digest comparison, the user
checks and the answers (401 "Invalid token." / "User inactive or deleted.") are knox's.
An expired token is refused exactly as before; its row is deleted by the daily prune
(`outcomes.retention.history_prune`, `tokens_expired_prune`) instead of by the request
that presented it. Nothing is cached: a revoked token (its row deleted) fails at once.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <token>`: the user and the `ApiToken` row, or 401."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        message = _("Invalid token.")
        try:
            # The header arrives as Latin-1 bytes: a byte that is not UTF-8 is no token.
            text = token.decode("utf-8")
            digest = hash_token(text)
        except (TypeError, binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed(message) from None
        working = (
            get_token_model()
            .objects.filter(token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH])
            .filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
            .select_related("user")
        )
        for auth_token in working:
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(message)


class TokenScheme(KnoxTokenScheme):
    """OpenAPI: this authenticator documents as knox's own scheme (`knoxApiToken`,
    `Authorization: Token <token>`); drf-spectacular matches extensions by exact class,
    so a subclass of knox's authenticator needs its own (drf_spectacular.contrib)."""

    target_class = "valuetree.auth.TokenAuthentication"
