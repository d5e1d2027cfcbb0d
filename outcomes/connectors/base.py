"""The one small interface every connector implements.

A connector knows how to talk to one kind of source and nothing else: it checks its
own configuration and returns raw `(period, value)` pairs. Turning those into numbers
and periods, refusing NaN, storing, scheduling and health are shared (outcomes/pulling.py).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

# What a connector returns: (period or None, value) with both still raw. A period of
# None means "now" (a single current value); a period may be a datetime, a date, an
# ISO 8601 string or a Unix timestamp in seconds. The value may be a number or a
# string holding one; anything else is refused by the shared validation.
RawPoint = tuple[Any, Any]


class PullError(Exception):
    """A pull failed for a reason a user can act on; the message says what to change.

    The message (str(error)) is shown to everyone who may read the tree, so it never
    quotes what the source answered: a response may echo the credentials sent with the
    request. `full` may quote it, and is shown only to those who may edit the source.
    Both are redacted of the credentials before they are stored.
    """

    def __init__(self, message: str, *, full: str | None = None) -> None:
        super().__init__(message)
        self.full = full or message


class TransientPullError(PullError):
    """A failure that may pass on its own (timeout, refused connection, 5xx, 429).

    Only these are retried, with backoff and jitter.
    """


@dataclass(frozen=True)
class FetchRequest:
    """Everything a connector may use for one pull."""

    config: Mapping[str, Any]  # the source's connection settings
    credentials: Mapping[str, Any]  # decrypted; never put into an error message
    query: str  # the metric's query: SQL, PromQL or the value's JSONPath
    options: Mapping[str, Any]  # the metric's kind-specific options
    since: datetime  # aware; the start of the window of interest
    until: datetime  # aware; now
    step_seconds: int  # the metric's granularity, for range queries
    timeout: float = 10.0  # seconds for the whole fetch
    max_bytes: int = 1024 * 1024  # the largest response a connector may read
    extra: Mapping[str, Any] = field(default_factory=dict)


class Connector(Protocol):
    kind: str
    # Whether fetch() reads FetchRequest.since; when False the pull skips finding the
    # newest stored period (a query) and `since` is only the lookback.
    uses_window: bool
    # Whether fetch() returns samples (a range query) of which several may fall in one
    # period: then the last one stands instead of the pull failing.
    samples_periods: bool

    def validate_source(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        """Raise django ValidationError (keys: `config.<name>` / `credentials.<name>`)."""

    def validate_metric(self, query: str, options: dict[str, Any]) -> None:
        """Raise django ValidationError (keys: `query` / `options.<name>`)."""

    def origin(self, config: Mapping[str, Any]) -> Hashable | None:
        """Where the source's credentials go: (scheme, host, port) as the code that
        connects reads the address, default port filled in; None when it cannot be read.

        Stored credentials are kept across an address change only when this is equal
        (and not None) before and after: the same parser as the connection, or a URL
        read two ways sends them to a server of the editor's choosing.
        """

    def fetch(self, request: FetchRequest) -> list[RawPoint]:
        """The raw points, or PullError / TransientPullError with an actionable message."""


# metric.options["period_unit"]: what a number given as a period counts, for the
# kinds whose periods may come as numbers (push, SQL, HTTP JSON): "s" (the default)
# or "ms" (JavaScript's Date.now(), many APIs). Read by outcomes.pulling.
PERIOD_UNIT_OPTION = "period_unit"
PERIOD_UNITS = ("s", "ms")


def period_unit_problem(options: Mapping[str, Any]) -> str | None:
    """What is wrong with ``options["period_unit"]``, if anything."""
    if PERIOD_UNIT_OPTION in options and options[PERIOD_UNIT_OPTION] not in PERIOD_UNITS:
        return 'The period unit of numbers is "s" (Unix seconds) or "ms" (milliseconds).'
    return None


NON_FINITE_WORDS = frozenset({"nan", "inf", "infinity"})


def describe_raw(raw: Any) -> str:
    """What a raw value from a source is, without quoting it: a response may echo the
    request's credentials, and what a reader sees must not hold them."""
    if raw is None or isinstance(raw, bool):
        return {None: "null", True: "true", False: "false"}[raw]
    if isinstance(raw, int | float | Decimal):
        return "a number"
    if isinstance(raw, str):
        if raw.strip().lower().lstrip("+-") in NON_FINITE_WORDS:
            return repr(raw.strip())  # words everyone knows, not content
        return f"a text of {len(raw)} character{'s' if len(raw) != 1 else ''}"
    if isinstance(raw, list | tuple):
        return f"a list of {len(raw)} item{'s' if len(raw) != 1 else ''}"
    if isinstance(raw, dict):
        return "an object"
    return f"a {type(raw).__name__}"
