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
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

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


# --- Redaction ------------------------------------------------------------------------

# A run of this many characters shared with a secret (or an encoding of it) is hidden:
# long enough that ordinary words in a message rarely match, short enough that a
# fragment of a token ("the first 50 characters") cannot pass.
REDACT_MIN_RUN = 6
REDACTED = "***"


def _secret_strings(secrets: Iterable[Any]) -> Iterator[str]:
    for secret in secrets:
        if isinstance(secret, Mapping):
            yield from _secret_strings(secret.values())
        elif isinstance(secret, list | tuple):
            yield from _secret_strings(secret)
        elif isinstance(secret, str) and len(secret) >= 4:
            yield secret


def _encodings(secret: str) -> set[str]:
    """The secret as it may appear in a message: as is, reversed, URL-encoded, JSON-
    (also with "\\/", as PHP writes it) or repr-escaped, hex, and base64 (standard and
    URL-safe) from every byte alignment, so the encoding of any part of it shares runs
    with one of these. Matching ignores case (redact)."""
    raw = secret.encode()
    forms = {
        secret,
        secret[::-1],
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        repr(secret)[1:-1],
        raw.hex(),
    }
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            # The last 1-3 characters depend on what follows the part: leave them out.
            encoded = encode(raw[offset:]).decode().rstrip("=")
            forms.add(encoded[:-1] if len(encoded) > REDACT_MIN_RUN else encoded)
    return {form for form in forms if form}


def _fold(text: str) -> str:
    """`text` in lower case, one character for one (so positions still match)."""
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


def redact(text: str, secrets: Iterable[Any]) -> str:
    """`text` with every run of REDACT_MIN_RUN or more characters that also occurs, in
    any case, in a secret (or in its reversal or its URL, JSON, hex or base64 encoding)
    replaced by "***"; a secret shorter than that is hidden where it occurs whole.

    `secrets` may nest dicts and lists (credentials as stored); strings under 4
    characters are not treated as secrets. Cost: O(len(text) + total secret length).
    """
    hidden = [False] * len(text)
    folded = _fold(text)
    for secret in _secret_strings(secrets):
        for form in {_fold(form) for form in _encodings(secret)}:
            if len(form) < REDACT_MIN_RUN:
                start = folded.find(form)
                while start != -1:
                    hidden[start : start + len(form)] = [True] * len(form)
                    start = folded.find(form, start + 1)
                continue
            grams = {form[i : i + REDACT_MIN_RUN] for i in range(len(form) - REDACT_MIN_RUN + 1)}
            for i in range(len(folded) - REDACT_MIN_RUN + 1):
                if folded[i : i + REDACT_MIN_RUN] in grams:
                    hidden[i : i + REDACT_MIN_RUN] = [True] * REDACT_MIN_RUN
    if not any(hidden):
        return text
    out: list[str] = []
    for char, gone in zip(text, hidden, strict=True):
        if not gone:
            out.append(char)
        elif not out or out[-1] is not REDACTED:
            out.append(REDACTED)
    return "".join(out)


def holds_secret(texts: Iterable[str], secrets: Iterable[Any]) -> bool:
    """Whether any of `texts` holds a run of REDACT_MIN_RUN characters of a secret as
    it is or reversed, in any case, or a whole shorter secret. For numbers that would be
    stored as they are: unlike `redact`, not the secret's encodings, whose hex is
    mostly digits (hex of "Bearer " is 42656172657220) and would refuse real values."""
    forms = {_fold(form) for secret in _secret_strings(secrets) for form in (secret, secret[::-1])}
    short = [form for form in forms if len(form) < REDACT_MIN_RUN]
    grams = {
        form[i : i + REDACT_MIN_RUN]
        for form in forms
        if len(form) >= REDACT_MIN_RUN
        for i in range(len(form) - REDACT_MIN_RUN + 1)
    }
    if not forms:
        return False
    for text in texts:
        folded = _fold(text)
        if any(form in folded for form in short) or any(
            folded[i : i + REDACT_MIN_RUN] in grams for i in range(len(folded) - REDACT_MIN_RUN + 1)
        ):
            return True
    return False
