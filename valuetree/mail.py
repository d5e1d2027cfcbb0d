"""Sending one e-mail and judging its failure (after healthchecks' transports).

``EmailTransport.send()`` returns nothing or raises ``TransportError(message,
permanent)``: SMTP 4xx answers, dropped connections and timeouts may pass (retry with
backoff); SMTP 5xx answers will not (no retry). Used by the catalogue's notification
e-mails and by the review reports (outcomes/reports/transports.py).

``send(message, accepted=callback)`` calls ``callback()`` the moment the server has
taken the message: over SMTP, as soon as its 250 answer to the end-of-data mark is read
(RFC 5321 §6.1: by that answer the server accepts responsibility), before QUIT or
anything else, so that a caller can record it with the least time in between
(outcomes/reports/services.py builds exactly-once delivery on it). A failure after
that moment (QUIT unanswered, the connection dropped) is no failure of the message.
"""

from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Callable
from typing import Any, NoReturn

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address

logger = logging.getLogger(__name__)
_LEADING_DOT = re.compile(rb"(?m)^\.")


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

    def send(self, message: Any, *, accepted: Callable[[], None] | None = None) -> None:
        """Send ``message`` (an EmailMessage); ``accepted()`` is called once the server
        has taken it (see the module's docstring); errors after that are logged, not
        raised."""
        taken = False

        def took() -> None:
            nonlocal taken
            taken = True
            if accepted is not None:
                accepted()

        try:
            with get_connection() as connection:
                if isinstance(connection, SMTPBackend):
                    sent = _smtp_send(connection, message, took)
                else:
                    sent = connection.send_messages([message])
                    if sent:
                        took()
        except (smtplib.SMTPException, OSError) as e:
            if not taken:
                _raise_transport_error(e)
            logger.info("Mail accepted; closing the connection failed: %s", type(e).__name__)
            return
        if not sent:
            raise TransportError("The mail backend sent nothing.")


def _raise_transport_error(error: Exception) -> NoReturn:
    try:
        raise error
    except smtplib.SMTPRecipientsRefused as e:
        codes = [code for code, _ in e.recipients.values()]
        raise TransportError(
            f"The mail server refused the recipient (SMTP {', '.join(map(str, codes))}).",
            permanent=any(code >= 500 for code in codes),
        ) from None
    except smtplib.SMTPResponseException as e:
        answer = e.smtp_error
        text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
        raise TransportError(
            f"The mail server answered SMTP {e.smtp_code}: {text[:200]}",
            permanent=500 <= e.smtp_code < 600,
        ) from None
    except (smtplib.SMTPException, OSError) as e:
        # Disconnected, refused connection, timeout: the server may come back.
        raise TransportError(
            f"Could not reach the mail server ({type(e).__name__}: {e})."
        ) from None


def _smtp_send(backend: SMTPBackend, message: Any, accepted: Callable[[], None]) -> int:
    """One message over the backend's open SMTP connection, as smtplib's ``sendmail``
    (which Django's backend calls) does, but ``accepted()`` runs the moment the 250
    answer to the end-of-data mark is read. Returns 1 (sent) or 0 (nothing to send);
    raises smtplib's errors as ``sendmail`` would."""
    if not message.recipients():
        return 0
    encoding = message.encoding or settings.DEFAULT_CHARSET
    sender = sanitize_address(message.from_email, encoding)
    recipients = [sanitize_address(address, encoding) for address in message.recipients()]
    data = message.message().as_bytes(linesep="\r\n")
    smtp = backend.connection
    smtp.ehlo_or_helo_if_needed()
    options = [f"size={len(data)}"] if smtp.does_esmtp and smtp.has_extn("size") else []
    code, answer = smtp.mail(sender, options)
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(code, answer, sender)
    refused = {}
    for recipient in recipients:
        code, answer = smtp.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, answer)
        if code == 421:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    smtp.putcmd("data")
    code, answer = smtp.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, answer)
    body = _LEADING_DOT.sub(b"..", data)  # dot-stuffing, RFC 5321 §4.5.2
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    smtp.send(body + b".\r\n")
    code, answer = smtp.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, answer)
    accepted()
    return 1
