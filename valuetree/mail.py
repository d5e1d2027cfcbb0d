"""Sending one e-mail and judging its failure (after healthchecks' transports).

``EmailTransport.send()`` returns nothing or raises ``TransportError(message,
permanent)``: SMTP 4xx answers, dropped connections and timeouts may pass (retry with
backoff); SMTP 5xx answers will not (no retry). Used by the catalogue's notification
e-mails and by the review reports (outcomes/reports/transports.py).
"""

from __future__ import annotations

import smtplib
from typing import Any

from django.core.mail import get_connection


class TransportError(Exception):
    """A delivery failed: ``permanent`` ones are not retried; ``retry_after`` is the
    seconds a server asked to wait (HTTP 429 Retry-After), None if it did not say."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class EmailTransport:
    """Sends one prepared message through Django's e-mail backend (SMTP in production)."""

    def send(self, message: Any) -> None:
        try:
            with get_connection() as connection:
                sent = connection.send_messages([message])
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            raise TransportError(
                f"The mail server refused the recipient (SMTP {', '.join(map(str, codes))}).",
                permanent=any(code >= 500 for code in codes),
            ) from None
        except smtplib.SMTPResponseException as e:
            error = e.smtp_error
            text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            raise TransportError(
                f"The mail server answered SMTP {e.smtp_code}: {text[:200]}",
                permanent=500 <= e.smtp_code < 600,
            ) from None
        except (smtplib.SMTPException, OSError) as e:
            # Disconnected, refused connection, timeout: the server may come back.
            raise TransportError(
                f"Could not reach the mail server ({type(e).__name__}: {e})."
            ) from None
        if not sent:
            raise TransportError("The mail backend sent nothing.")
