"""Source credentials, encrypted at rest with Fernet keys from the environment.

`CREDENTIALS_KEYS` lists keys newest first: the newest encrypts, every listed key
decrypts, so a key is rotated by putting a new one in front, running
`manage.py rotate_credentials`, then dropping the old one. With DEBUG on and no key
set, a development key is derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialsUnreadable(Exception):
    """No configured key opens these credentials (a key was dropped too early)."""


def _fernet() -> MultiFernet:
    keys = list(settings.CREDENTIALS_KEYS)
    if not keys:
        if not settings.DEBUG:
            raise ImproperlyConfigured("CREDENTIALS_KEYS must be set when DEBUG is off.")
        digest = hashlib.sha256(f"valuetree-credentials:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "Every key in CREDENTIALS_KEYS must be a 32-byte url-safe base64 Fernet key."
        ) from None


def credentials_encrypt(credentials: dict[str, Any]) -> str:
    if not credentials:
        return ""
    return _fernet().encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()


def credentials_decrypt(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable(
            "The source's credentials cannot be decrypted with the keys in CREDENTIALS_KEYS; "
            "enter them again or restore the key they were written with."
        ) from None


def credentials_rotate(token: str) -> str:
    """The same credentials, encrypted with the newest key."""
    if not token:
        return ""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialsUnreadable(
            "Some credentials cannot be decrypted with any key in CREDENTIALS_KEYS; keep "
            "the key they were written with in the list until they are rotated."
        ) from None
