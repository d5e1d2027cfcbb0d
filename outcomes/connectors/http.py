"""A safe outbound HTTP GET for connectors that read metrics from user-given addresses.

Anyone who may configure a source chooses the address we fetch, so every fetch is a
possible server-side request forgery. The defences:

- The address check happens when the socket is opened: the host name is resolved once,
  every address is checked, and the socket connects only to those addresses. Checking
  the name earlier and letting the HTTP library resolve it again would leave a
  DNS-rebinding gap. Redirects open new connections, so they are checked the same way.
- Only globally routable addresses are reachable, unless an operator lists the host
  (or host:port) in METRICS_ALLOWED_HOSTS.
- One deadline covers the whole request (connect, headers, body, every redirect): a
  server that trickles bytes cannot hold a worker past it. Per-read timeouts alone
  would not stop one byte every few seconds.
- The body is read in chunks and abandoned past `max_bytes`.
- Error messages never hold header values: headers carry credentials.
- Every decision about where a URL points (validation, "the same origin" on a redirect
  or when a source's address changes) uses `origin()`, which parses the URL with
  urllib3's parser, the one that opens the connection. A URL that Python's urlsplit
  reads differently (`http://a\\@127.0.0.1/`) is refused as ambiguous.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationParseError,
    LocationValueError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import parse_url

from outcomes.connectors.base import PullError, TransientPullError

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024
_USER_AGENT = "Valuetree metrics pull"

# Header names are RFC 9110 tokens. Values may not hold line breaks (header injection)
# and must be Latin-1, which is what http.client sends.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FORBIDDEN_VALUE_CHARS = re.compile(r"[\r\n\x00]")
# These decide how the request is framed or routed; letting a user set them would
# confuse the framing, not add anything a metric source needs.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Forwarding headers to another origin (scheme, host, port) on a redirect is the classic way
# to leak credentials, and any header may hold one: such a redirect keeps only these.
_HEADERS_KEPT_ACROSS_HOSTS = frozenset({"accept", "user-agent"})

_DEFAULT_PORTS = {"http": 80, "https": 443}

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_NAT64_NETWORK = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    body: bytes
    url: str  # after redirects


# -- Addresses ---------------------------------------------------------------------------


def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name stands for, in the resolver's order.

    The one place names are resolved, so tests can make a name resolve anywhere.
    """
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    # dict keeps the first occurrence's order while dropping duplicates
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_problem(address: str) -> str | None:
    """Why an address may not be fetched from (e.g. "private address"); None if public."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        # These IPv6 forms carry an IPv4 address and reach that host; judge it instead.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64_NETWORK:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if any(ip in network for network in _PRIVATE_NETWORKS if network.version == ip.version):
        return "private address"
    if ip.version == 4 and ip in _SHARED_NETWORK:
        return "shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "reserved address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local address"
    if ip.is_private or not ip.is_global:
        return "non-public address"
    return None


def host_allowed(host: str, port: int) -> bool:
    """Whether an operator allowed this host (any port) or host:port to be non-public."""
    host = host.lower().rstrip(".")
    forms = {host, f"{host}:{port}", f"[{host}]", f"[{host}]:{port}"}
    return any(
        str(entry).strip().lower().rstrip(".") in forms for entry in settings.METRICS_ALLOWED_HOSTS
    )


def checked_addresses(host: str, port: int) -> list[str]:
    """The addresses to connect to, or PullError if any of them is off limits."""
    try:
        addresses = resolve(host, port)
    except socket.gaierror as e:
        if e.errno == socket.EAI_AGAIN:
            raise TransientPullError(f"Could not resolve {host} right now ({e.strerror}).") from e
        raise PullError(f"The host name {host} does not resolve; check the address.") from e
    if not addresses:
        raise PullError(f"The host name {host} does not resolve; check the address.")
    if host_allowed(host, port):
        return addresses
    for address in addresses:
        problem = address_problem(address)
        if problem:
            # Any bad address refuses the name: connecting only to the good ones would
            # let a name that mixes both probe the inside by timing.
            raise PullError(
                f"Refused to connect to {address} ({problem}) for {host}; an operator can "
                "allow the host in METRICS_ALLOWED_HOSTS."
            )
    return addresses


# -- Connections -------------------------------------------------------------------------


class Deadline:
    """One request's time budget; when it runs out, its sockets are shut down.

    Shutting the socket down wakes a thread blocked in a read, whatever the HTTP
    library is in the middle of (status line, headers, chunk sizes, body). One watchdog
    thread serves every deadline: a thread per request cost more than the request.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False

    def remaining(self) -> float:
        return self._at - time.monotonic()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> Deadline:
        _WATCHDOG.watch(self, self._at)
        return self

    def __exit__(self, *exc: object) -> None:
        _WATCHDOG.forget(self)


class _Watchdog:
    """Expires deadlines when their time comes, from one daemon thread started on demand."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._live: set[int] = set()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline, at: float) -> None:
        with self._condition:
            heapq.heappush(self._heap, (at, id(deadline), deadline))
            self._live.add(id(deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="http-deadlines", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def forget(self, deadline: Deadline) -> None:
        with self._condition:
            self._live.discard(id(deadline))

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._heap and id(self._heap[0][2]) not in self._live:
                    heapq.heappop(self._heap)  # finished in time
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._condition.wait(wait)
                    continue
                _, key, deadline = heapq.heappop(self._heap)
                self._live.discard(key)
            deadline.expire()


_WATCHDOG = _Watchdog()


def _shut(sock: socket.socket) -> None:
    # socket.socket.shutdown on purpose: SSLSocket.shutdown would also drop its TLS
    # state under the feet of the thread reading from it.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _open_socket(
    addresses: list[str],
    port: int,
    timeout: Any,
    source_address: tuple[str, int] | None,
    socket_options: Any,
) -> socket.socket:
    error: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:  # e.g. no IPv6 on this machine
            error = e
            continue
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect((address, port))
        except OSError as e:
            sock.close()
            error = e
            continue
        return sock
    assert error is not None  # addresses is never empty
    raise error


class _GuardedConnectionMixin:
    """Opens the socket only to addresses resolved and checked in the same step."""

    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any
    sock: socket.socket | None

    def __init__(self, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        self._deadline = deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        addresses = checked_addresses(self.host, self.port)
        try:
            sock = _open_socket(
                addresses, self.port, self.timeout, self.source_address, self.socket_options
            )
        except TimeoutError as e:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from e
        except OSError as e:
            raise NewConnectionError(self, f"Failed to establish a new connection: {e}") from e
        self._deadline.track(sock)
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        # HTTPS wraps the plain socket in a new TLS socket object: watch that one too.
        if self.sock is not None:
            self._deadline.track(self.sock)


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    # Certificate and host name verification stay urllib3's: the TLS layer still gets
    # the original host name, only the socket under it is opened by us.
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    """A pool manager for one request (redirects included), all on one deadline."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__(num_pools=MAX_REDIRECTS + 1)
        self.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }
        self._deadline = deadline

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        # Added after the pool key is computed: PoolKey has a fixed set of fields.
        pool.conn_kw["deadline"] = self._deadline
        return pool


# -- Validation --------------------------------------------------------------------------


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) that urllib3 connects to for `url`, default port filled in.

    Lower-case scheme and host; an IPv6 host without brackets. Raises ValueError when
    urllib3 cannot parse the URL or it has no http(s) scheme or no host. Origin is the
    RFC 6454 triple: credentials entered for one origin are sent to no other.
    """
    try:
        parts = parse_url(url)
    except LocationParseError as e:
        raise ValueError("not a parseable address") from e
    scheme = (parts.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or not parts.host:
        raise ValueError("not an http(s) address with a host")
    host = parts.host.lower().removeprefix("[").removesuffix("]")
    return scheme, host, parts.port or _DEFAULT_PORTS[scheme]


def validate_url(url: object) -> None:
    """Raise ValidationError unless `url` is an http(s) address with a host, read the same
    way by urllib3 (which connects) and by urlsplit (which the rest of Python uses)."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("Enter the address of the source, starting with https:// or http://.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValidationError("The address may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
    except ValueError as e:  # "Invalid IPv6 URL", a host invalid under NFKC
        raise ValidationError("The address cannot be read; write it as https://host/path.") from e
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("The address must start with https:// or http://.")
    if not parts.hostname:
        raise ValidationError("The address has no host name.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("Put credentials in the credentials headers, not in the address.")
    try:
        port = parts.port
    except ValueError as e:
        raise ValidationError("The address has an invalid port.") from e
    try:
        connects_to = origin(url)
        auth = parse_url(url).auth
    except ValueError as e:
        raise ValidationError("The address cannot be read; write it as https://host/path.") from e
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        # urlsplit's reading, normalised the way urllib3 normalises (case, IDNA).
        seen = origin(f"{parts.scheme}://{host}:{port or _DEFAULT_PORTS[parts.scheme.lower()]}/")
    except ValueError:
        seen = None
    if auth is not None or connects_to != seen:
        # e.g. "http://a\@127.0.0.1/": urlsplit reads host 127.0.0.1, urllib3 host "a".
        raise ValidationError(
            "The address is ambiguous (a \\, @ or # before the host is read differently by "
            "different parsers); write it plainly as https://host:port/path."
        )


def validate_headers(headers: object) -> None:
    """Raise ValidationError unless `headers` is {name: value} that can be sent as is.

    Messages name the header, never its value.
    """
    if not isinstance(headers, Mapping):
        raise ValidationError("Headers must be an object of {name: value}.")
    problems = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            problems.append(f"{name!r} is not a valid header name.")
        elif name.lower() in _RESERVED_HEADERS:
            problems.append(f"The {name} header is set by the connection and cannot be changed.")
        elif not isinstance(value, str):
            problems.append(f"The value of {name} must be text.")
        elif _FORBIDDEN_VALUE_CHARS.search(value):
            problems.append(f"The value of {name} may not contain line breaks.")
        elif not value.isascii() and not _latin1(value):
            problems.append(f"The value of {name} has characters HTTP headers cannot carry.")
    if problems:
        raise ValidationError(problems)


def validate_http_source(config: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
    """The checks shared by connectors whose source is {"url", "headers"} + {"headers"}.

    Raises ValidationError keyed `config.<name>` / `credentials.<name>`.
    """
    errors: dict[str, list[str]] = {}
    for name in config:
        if name not in ("url", "headers"):
            errors[f"config.{name}"] = ["Unknown setting: the settings are url and headers."]
    for name in credentials:
        if name != "headers":
            errors[f"credentials.{name}"] = ["Unknown credential: the only one is headers."]
    checks = [
        ("config.url", validate_url, config.get("url")),
        ("config.headers", validate_headers, config.get("headers", {})),
        ("credentials.headers", validate_headers, credentials.get("headers", {})),
    ]
    for key, check, value in checks:
        try:
            check(value)
        except ValidationError as e:
            errors[key] = e.messages
    if errors:
        raise ValidationError(errors)


def source_origin(config: Mapping[str, Any]) -> tuple[str, str, int] | None:
    """The origin of a {"url", "headers"} source's address, None if it has none usable."""
    url = config.get("url")
    if not isinstance(url, str):
        return None
    try:
        validate_url(url)
    except ValidationError:
        return None
    return origin(url)


def source_headers(config: Mapping[str, Any], credentials: Mapping[str, Any]) -> dict[str, str]:
    """The source's headers, the secret ones replacing same-named plain ones."""
    return merge_headers(config.get("headers") or {}, credentials.get("headers") or {})


def merge_headers(*layers: Mapping[str, str]) -> dict[str, str]:
    """Later layers win; header names match in any case, as HTTP has them."""
    merged: dict[Any, tuple[str, str]] = {}
    for headers in layers:
        for name, value in headers.items():
            merged[name.lower() if isinstance(name, str) else name] = (name, value)
    return dict(merged.values())


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


# -- Fetching ----------------------------------------------------------------------------


def http_get(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int = 1024 * 1024,
    accept: Collection[int] = (),
) -> Response:
    """GET `url` within `timeout` seconds in all, following up to 5 redirects.

    A 2xx answer (or one whose status is in `accept`) is returned; any other raises
    PullError, or TransientPullError for what may pass (timeouts, broken connections,
    429, 5xx).
    """
    try:
        validate_url(url)
    except ValidationError as e:
        raise PullError(f"{_display(url)} is not a usable address: {' '.join(e.messages)}") from e
    try:
        validate_headers(headers or {})
    except ValidationError as e:
        raise PullError(" ".join(e.messages)) from e
    request_headers = merge_headers({"User-Agent": _USER_AGENT}, headers or {})

    home = origin(url)
    with Deadline(timeout) as deadline:
        manager = _GuardedPoolManager(deadline)
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response = _get_once(manager, url, request_headers, deadline, max_bytes, accept)
                if isinstance(response, Response):
                    return response
                try:
                    location = urljoin(url, response)
                    scheme = urlsplit(location).scheme.lower()
                except ValueError:
                    raise PullError(
                        f"{_display(url)} redirected to an address that cannot be read."
                    ) from None
                if scheme not in ("http", "https"):
                    raise PullError(
                        f"{_display(url)} redirected to {_display(location)}, which is not an "
                        "http(s) address."
                    )
                try:
                    validate_url(location)
                except ValidationError as e:
                    raise PullError(
                        f"{_display(url)} redirected to an address that is not usable: "
                        f"{' '.join(e.messages)}"
                    ) from e
                if origin(location) != home:
                    # Another scheme, host or port is another server (or service): the
                    # headers, which may hold credentials, stay with the origin they
                    # were entered for, also if a later redirect comes back.
                    request_headers = {
                        name: value
                        for name, value in request_headers.items()
                        if name.lower() in _HEADERS_KEPT_ACROSS_HOSTS
                    }
                url = location
            raise PullError(
                f"The source redirected more than {MAX_REDIRECTS} times (last to "
                f"{_display(url)}); use the final address."
            )
        finally:
            manager.clear()


def _get_once(
    manager: _GuardedPoolManager,
    url: str,
    headers: Mapping[str, str],
    deadline: Deadline,
    max_bytes: int,
    accept: Collection[int],
) -> Response | str:
    """One hop: the final Response, or the raw Location of a redirect to follow."""
    remaining = deadline.remaining()
    if remaining <= 0:
        raise _timeout(url, deadline)
    try:
        response = manager.urlopen(
            "GET",
            url,
            headers=dict(headers),
            redirect=False,
            retries=False,
            preload_content=False,
            timeout=Timeout(connect=remaining, read=remaining),
        )
    except LocationValueError as e:
        raise PullError(f"{_display(url)} is not a usable address.") from e
    except (HTTPError, OSError, http.client.HTTPException) as e:
        raise _transport_error(e, url, deadline) from e
    try:
        status = response.status
        location = response.headers.get("Location")
        if status in _REDIRECT_STATUSES and location:
            return location
        if not (200 <= status < 300 or status in accept):
            raise _status_error(status, url)
        body = _read_body(response, url, deadline, max_bytes)
        return Response(status=status, headers=response.headers, body=body, url=url)
    finally:
        response.close()


def _read_body(response: Any, url: str, deadline: Deadline, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks = []
    size = 0
    try:
        for chunk in response.stream(_CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)
    except (HTTPError, OSError, http.client.HTTPException) as e:
        raise _transport_error(e, url, deadline) from e
    # A shut-down socket reads as a clean end of a body without Content-Length.
    if deadline.expired:
        raise _timeout(url, deadline)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`; NaN and Infinity literals are refused."""

    def refuse_constant(literal: str) -> Any:
        raise ValueError(f"{literal} is not a number JSON allows")

    try:
        return json.loads(body, parse_constant=refuse_constant)
    except RecursionError as e:
        raise PullError("The response is not valid JSON: it is nested too deeply.") from e
    except json.JSONDecodeError as e:
        # Its message is positional ("Expecting value: line 1 column 1 (char 0)").
        raise PullError(f"The response is not valid JSON: {e}.") from e
    except UnicodeDecodeError as e:  # its message quotes a byte of the response
        raise PullError(
            f"The response is not valid JSON: it is not UTF-8 text (at byte {e.start})."
        ) from e
    except ValueError as e:  # refuse_constant: our own words
        raise PullError(f"The response is not valid JSON: {e}.") from e


def get_json(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int = 1024 * 1024,
) -> Any:
    """GET `url` as http_get does and parse the answer as JSON."""
    response = http_get(
        url,
        headers=merge_headers({"Accept": "application/json"}, headers or {}),
        timeout=timeout,
        max_bytes=max_bytes,
    )
    return parse_json(response.body)


# -- Messages ----------------------------------------------------------------------------


def _display(url: object) -> str:
    """The address for a message: no user:password@, no query (often holds tokens)."""
    if not isinstance(url, str):
        return repr(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<an invalid address>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{shown}?…" if parts.query else shown


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _too_large(max_bytes: int) -> PullError:
    return PullError(
        f"The response is larger than {_size(max_bytes)} (METRICS_MAX_RESPONSE_BYTES); "
        "ask the source for less data."
    )


def _timeout(url: str, deadline: Deadline) -> TransientPullError:
    return TransientPullError(
        f"No complete answer from {_display(url)} within {deadline.seconds:g} s."
    )


def _status_error(status: int, url: str) -> PullError:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    answered = f"The source answered HTTP {status} {phrase}".rstrip() + f" for {_display(url)}"
    if status == 429 or status >= 500:
        return TransientPullError(f"{answered}; the pull will be retried.")
    if status in (401, 403):
        return PullError(f"{answered}; check the credentials headers.")
    if status in (404, 410):
        return PullError(f"{answered}; check the address and path.")
    return PullError(f"{answered}.")


def _transport_error(error: Exception, url: str, deadline: Deadline) -> PullError:
    if deadline.expired or deadline.remaining() <= 0:
        return _timeout(url, deadline)
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if isinstance(error, NewConnectionError):
        return TransientPullError(f"Could not connect to {where} ({_reason(error)}).")
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return _timeout(url, deadline)
    if isinstance(error, SSLError):
        cause = _root_cause(error)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return PullError(
                f"The certificate of {parts.hostname} is not valid ({cause.verify_message})."
            )
    return TransientPullError(
        f"The connection to {where} broke before a complete answer ({_reason(error)})."
    )


def _root_cause(error: BaseException) -> BaseException:
    seen = {id(error)}
    while True:
        inner = error.__cause__ or (error.args[-1] if error.args else None)
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def _reason(error: BaseException) -> str:
    cause = _root_cause(error)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return type(cause).__name__


# -- Posting (report webhooks) -----------------------------------------------------------


def http_post(
    url: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    timeout: float = 10.0,
    max_bytes: int = 64 * 1024,
) -> Response:
    """POST `body` to `url` through the same connect-time address checks as a GET
    (METRICS_ALLOWED_HOSTS, one deadline), following no redirect; any status is
    returned for the caller to judge.

    The URL is a secret (a webhook's address is its credential): no message here
    quotes it, not even its host's path. Raises PullError (the address is unusable or
    refused) or TransientPullError (timeout, connection failure).
    """
    try:
        validate_url(url)
    except ValidationError as e:
        raise PullError(f"The webhook address is not usable: {' '.join(e.messages)}") from e
    scheme, host, port = origin(url)
    with Deadline(timeout) as deadline:
        manager = _GuardedPoolManager(deadline)
        try:
            remaining = deadline.remaining()
            try:
                response = manager.urlopen(
                    "POST",
                    url,
                    body=body,
                    headers={"User-Agent": "Valuetree reports", "Content-Type": content_type},
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    timeout=Timeout(connect=remaining, read=remaining),
                )
            except PullError:
                raise
            except (HTTPError, OSError, http.client.HTTPException) as e:
                if deadline.expired or deadline.remaining() <= 0:
                    raise TransientPullError(
                        f"No answer from {host}:{port} within {timeout:g} s."
                    ) from None
                raise TransientPullError(
                    f"Could not reach {host}:{port} ({type(e).__name__})."
                ) from None
            try:
                data = _read_body(response, "the webhook", deadline, max_bytes)
            except PullError:
                data = b""
            finally:
                response.close()
            return Response(status=response.status, headers=response.headers, body=data, url="")
        finally:
            manager.clear()
