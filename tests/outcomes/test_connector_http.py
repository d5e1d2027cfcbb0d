from __future__ import annotations

import ipaddress
import socket
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError

from outcomes.connectors import http
from outcomes.connectors.base import PullError, TransientPullError
from tests.stub_http import StubServer, redirect, trickle

SECRET = "s3cret-token-value"


@pytest.fixture
def stub(settings):
    with StubServer() as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port]
        yield server


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestAddressProblem:
    @pytest.mark.parametrize(
        ("address", "problem"),
        [
            ("127.0.0.1", "loopback address"),
            ("127.8.9.10", "loopback address"),
            ("10.0.0.5", "private address"),
            ("172.16.0.1", "private address"),
            ("172.31.255.255", "private address"),
            ("192.168.1.1", "private address"),
            ("169.254.169.254", "link-local address"),
            ("100.64.0.1", "shared (carrier-grade NAT) address"),
            ("100.127.255.254", "shared (carrier-grade NAT) address"),
            ("0.0.0.0", "unspecified address"),
            ("224.0.0.1", "multicast address"),
            ("240.0.0.1", "reserved address"),
            ("192.0.2.10", "non-public address"),  # documentation range
            ("::1", "loopback address"),
            ("::", "unspecified address"),
            ("fd00::1", "private address"),
            ("fc00::1", "private address"),
            ("fe80::1", "link-local address"),
            ("fec0::1", "site-local address"),
            ("ff02::1", "multicast address"),
            ("::ffff:127.0.0.1", "loopback address"),
            ("::ffff:10.1.2.3", "private address"),
            ("::ffff:169.254.169.254", "link-local address"),
            ("2002:7f00:1::1", "loopback address"),  # 6to4 around 127.0.0.1
            ("64:ff9b::a00:1", "private address"),  # NAT64 around 10.0.0.1
        ],
    )
    def test_non_public_addresses_are_refused(self, address, problem):
        assert http.address_problem(address) == problem

    @pytest.mark.parametrize(
        "address",
        ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111"],
    )
    def test_public_addresses_pass(self, address):
        assert http.address_problem(address) is None


class TestAddressesRefusedAtConnect:
    @pytest.mark.parametrize(
        ("host", "refused"),
        [
            ("localhost", "(loopback address) for localhost"),
            ("127.0.0.1", "127.0.0.1 (loopback address)"),
            ("169.254.169.254", "169.254.169.254 (link-local address)"),
            ("100.64.0.1", "100.64.0.1 (shared (carrier-grade NAT) address)"),
            ("[::1]", "::1 (loopback address)"),
            ("[fd00::1]", "fd00::1 (private address)"),
            ("[fe80::1]", "fe80::1 (link-local address)"),
            ("[::ffff:127.0.0.1]", "(loopback address) for ::ffff:127.0.0.1"),
        ],
    )
    def test_internal_address_is_refused_before_any_request(self, stub, settings, host, refused):
        settings.METRICS_ALLOWED_HOSTS = []
        with pytest.raises(PullError) as caught:
            http.http_get(f"http://{host}:{stub.port}/")
        assert type(caught.value) is PullError  # not transient: retrying will not help
        assert refused in str(caught.value)
        assert "METRICS_ALLOWED_HOSTS" in str(caught.value)
        assert stub.requests == []

    def test_name_resolving_to_a_private_address_is_refused(self, monkeypatch, settings):
        settings.METRICS_ALLOWED_HOSTS = []
        monkeypatch.setattr(http, "resolve", lambda host, port: ["10.0.0.5"])
        with pytest.raises(PullError, match="10.0.0.5 \\(private address\\) for internal.example"):
            http.http_get("https://internal.example.com/metrics")

    def test_name_with_one_private_address_among_public_ones_is_refused(self, monkeypatch):
        monkeypatch.setattr(http, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.5"])
        with pytest.raises(PullError, match="10.0.0.5 \\(private address\\)"):
            http.http_get("http://mixed.example.com/")

    def test_the_socket_opens_to_the_addresses_just_checked(self, monkeypatch):
        # A second lookup could answer differently (DNS rebinding): there must be one
        # lookup per connection, and the socket must go to what it returned.
        answers = iter([["93.184.216.34"], ["127.0.0.1"]])
        monkeypatch.setattr(http, "resolve", lambda host, port: next(answers))
        opened = []

        def open_socket(addresses, port, *args):
            opened.append((addresses, port))
            raise ConnectionRefusedError(111, "Connection refused")

        monkeypatch.setattr(http, "_open_socket", open_socket)
        with pytest.raises(TransientPullError, match="Could not connect to rebinding.example:80"):
            http.http_get("http://rebinding.example/")
        assert opened == [(["93.184.216.34"], 80)]

    def test_allow_listed_host_and_port_is_reached(self, stub):
        stub.route("/ok", (200, {}, b"fine"))
        assert http.http_get(f"{stub.url}/ok").body == b"fine"

    @pytest.mark.parametrize("entry", ["127.0.0.1", "LOCALHOST"])
    def test_allow_listed_host_without_port_allows_any_port(self, stub, settings, entry):
        settings.METRICS_ALLOWED_HOSTS = [entry]
        stub.route("/ok", (200, {}, b"fine"))
        host = entry.lower()
        assert http.http_get(f"http://{host}:{stub.port}/ok").body == b"fine"

    def test_other_port_of_an_allow_listed_host_is_refused(self, stub):
        with pytest.raises(PullError, match="127.0.0.1 \\(loopback address\\)"):
            http.http_get(f"http://127.0.0.1:{free_port()}/")

    @pytest.mark.parametrize(
        "target",
        [
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:{port}/ok",  # same server, but by a name not allow-listed
        ],
    )
    def test_redirect_to_an_internal_address_is_refused(self, stub, target):
        stub.route("/ok", (200, {}, b"internal"))
        stub.route("/go", redirect(target.format(port=stub.port)))
        with pytest.raises(PullError, match="Refused to connect to"):
            http.http_get(f"{stub.url}/go")
        assert [r.path for r in stub.requests] == ["/go"]


class TestRedirects:
    def test_relative_redirects_are_followed(self, stub):
        stub.route("/a/start", redirect("next"))
        stub.route("/a/next", redirect("/final?x=1", status=301))
        stub.route("/final", (200, {}, b"done"))
        response = http.http_get(f"{stub.url}/a/start")
        assert (response.status, response.body) == (200, b"done")
        assert response.url == f"{stub.url}/final?x=1"

    def test_more_than_five_redirects_are_refused(self, stub):
        stub.route("/loop", redirect("/loop"))
        with pytest.raises(PullError, match="redirected more than 5 times"):
            http.http_get(f"{stub.url}/loop")
        assert len(stub.requests) == 6

    def test_redirect_to_another_scheme_is_refused(self, stub):
        stub.route("/go", redirect("file:///etc/passwd"))
        with pytest.raises(PullError, match="not an http\\(s\\) address"):
            http.http_get(f"{stub.url}/go")

    def test_headers_are_dropped_when_a_redirect_leaves_the_host(self, stub, settings):
        settings.METRICS_ALLOWED_HOSTS = [stub.host_port, f"localhost:{stub.port}"]
        stub.route("/go", redirect(f"http://localhost:{stub.port}/there"))
        stub.route("/there", (200, {}, b"ok"))
        http.http_get(f"{stub.url}/go", headers={"Authorization": SECRET, "Accept": "text/csv"})
        first, second = stub.requests
        assert first.headers["authorization"] == SECRET
        assert "authorization" not in second.headers
        assert second.headers["accept"] == "text/csv"

    def test_headers_are_dropped_when_a_redirect_goes_to_another_port(self, stub, settings):
        # Another port of the same host is another server: the origin is scheme, host
        # and port (RFC 6454).
        with StubServer() as other:
            settings.METRICS_ALLOWED_HOSTS = [stub.host_port, other.host_port]
            stub.route("/go", redirect(f"{other.url}/there"))
            other.route("/there", redirect(f"{stub.url}/back"))
            stub.route("/back", (200, {}, b"ok"))
            http.http_get(f"{stub.url}/go", headers={"Authorization": SECRET, "X-Key": SECRET})
            assert "authorization" not in other.requests[0].headers
            assert "x-key" not in other.requests[0].headers
        # Coming back does not bring them back: the chain already left once.
        assert [r.path for r in stub.requests] == ["/go", "/back"]
        assert "authorization" not in stub.requests[1].headers

    def test_redirect_to_an_address_read_two_ways_is_refused(self, stub):
        stub.route("/go", redirect(f"http://api.example\\@{stub.host_port}/there"))
        with pytest.raises(PullError, match="redirected to an address that is not usable"):
            http.http_get(f"{stub.url}/go", headers={"Authorization": SECRET})
        assert len(stub.requests) == 1

    def test_headers_are_kept_on_a_redirect_within_the_host(self, stub):
        stub.route("/go", redirect("/there"))
        stub.route("/there", (200, {}, b"ok"))
        http.http_get(f"{stub.url}/go", headers={"Authorization": SECRET})
        assert [r.headers["authorization"] for r in stub.requests] == [SECRET, SECRET]


class TestLimits:
    def test_declared_content_length_over_the_cap_is_refused(self, stub):
        stub.route("/big", (200, {}, b"x" * 2048))
        with pytest.raises(PullError, match="larger than 1 KiB \\(METRICS_MAX_RESPONSE_BYTES\\)"):
            http.http_get(f"{stub.url}/big", max_bytes=1024)

    def test_chunked_body_over_the_cap_is_refused(self, stub):
        stub.route("/big", (200, {}, iter([b"x" * 1000] * 3)))
        with pytest.raises(PullError, match="larger than 2000 bytes"):
            http.http_get(f"{stub.url}/big", max_bytes=2000)

    def test_body_at_the_cap_is_read(self, stub):
        stub.route("/exact", (200, {}, iter([b"x" * 1000] * 2)))
        assert len(http.http_get(f"{stub.url}/exact", max_bytes=2000).body) == 2000

    @pytest.mark.parametrize("content_length", [True, False])
    def test_trickling_server_fails_at_the_total_deadline(self, stub, content_length):
        # Each byte comes well within any per-read timeout; only a total deadline stops it.
        headers = {"Content-Length": "100"} if content_length else {}
        stub.route("/slow", lambda path, _: (200, headers, trickle(b"x" * 100, delay=0.05)))
        with pytest.raises(
            TransientPullError, match="No complete answer from .*/slow within 0.5 s"
        ):
            http.http_get(f"{stub.url}/slow", timeout=0.5)

    def test_connection_refused_is_transient(self, settings):
        port = free_port()
        settings.METRICS_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
        with pytest.raises(TransientPullError, match=f"Could not connect to 127.0.0.1:{port}"):
            http.http_get(f"http://127.0.0.1:{port}/")


class TestStatuses:
    @pytest.mark.parametrize(
        ("status", "error", "message"),
        [
            (404, PullError, "answered HTTP 404 Not Found for http://127.0.0.1:"),
            (401, PullError, "HTTP 401 Unauthorized .*check the credentials"),
            (503, TransientPullError, "HTTP 503 Service Unavailable"),
            (500, TransientPullError, "HTTP 500 Internal Server Error"),
            (429, TransientPullError, "HTTP 429 Too Many Requests"),
        ],
    )
    def test_non_2xx_answers_raise(self, stub, status, error, message):
        stub.route("/x", (status, {}, b"nope"))
        with pytest.raises(PullError, match=message) as caught:
            http.http_get(f"{stub.url}/x")
        assert type(caught.value) is error

    def test_accepted_status_is_returned(self, stub):
        stub.route("/x", (422, {}, b"why"))
        response = http.http_get(f"{stub.url}/x", accept=[422])
        assert (response.status, response.body) == (422, b"why")

    def test_query_string_is_left_out_of_messages(self, stub):
        stub.route("/x", (404, {}, b""))
        with pytest.raises(PullError) as caught:
            http.http_get(f"{stub.url}/x?api_key={SECRET}")
        assert SECRET not in str(caught.value)
        assert "/x?…" in str(caught.value)


class TestJson:
    def test_json_is_parsed_and_asked_for(self, stub):
        stub.route("/j", (200, {}, {"value": 4.5}))
        assert http.get_json(f"{stub.url}/j") == {"value": 4.5}
        assert stub.requests[0].headers["accept"] == "application/json"

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"<html>oops</html>", "The response is not valid JSON: Expecting value"),
            (b'{"value": NaN}', "The response is not valid JSON: NaN is not"),
            (b'{"value": -Infinity}', "The response is not valid JSON: -Infinity is not"),
            (b"\xff\xfe\xfa", "The response is not valid JSON"),
            (b"[" * 100_000, "nested too deeply"),
        ],
        ids=["html", "nan", "infinity", "not-utf8", "too-deep"],
    )
    def test_invalid_json_is_refused(self, stub, body, message):
        stub.route("/j", (200, {}, body))
        with pytest.raises(PullError, match=message):
            http.get_json(f"{stub.url}/j")


class TestSecrets:
    @pytest.mark.parametrize(
        "route",
        [
            (404, {}, b""),
            (503, {}, b""),
            (200, {}, b"not json"),
            (200, {}, b"x" * 5000),
            redirect("http://10.0.0.1/"),
            redirect("gopher://elsewhere/"),
        ],
    )
    def test_header_values_never_appear_in_errors(self, stub, route):
        stub.route("/x", route)
        with pytest.raises(PullError) as caught:
            http.get_json(
                f"{stub.url}/x", headers={"Authorization": f"Bearer {SECRET}"}, max_bytes=1000
            )
        assert SECRET not in str(caught.value)

    def test_invalid_header_value_is_refused_without_echoing_it(self, stub):
        with pytest.raises(PullError, match="value of X-Api-Key may not contain line breaks") as c:
            http.http_get(f"{stub.url}/", headers={"X-Api-Key": f"{SECRET}\r\nX-Evil: 1"})
        assert SECRET not in str(c.value)
        assert stub.requests == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1: (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_stub(settings, certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with StubServer(ssl_context=context) as server:
        settings.METRICS_ALLOWED_HOSTS = [server.host_port, f"other.example:{server.port}"]
        server.route("/ok", (200, {}, b"secure"))
        yield server


class TestHttps:
    def test_untrusted_certificate_is_refused(self, tls_stub):
        with pytest.raises(PullError, match="The certificate of 127.0.0.1 is not valid"):
            http.http_get(f"{tls_stub.url}/ok")
        assert tls_stub.requests == []

    def test_trusted_certificate_is_accepted(self, tls_stub, certificate, monkeypatch):
        # OpenSSL reads SSL_CERT_FILE when urllib3 loads the default trust store.
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        assert http.http_get(f"{tls_stub.url}/ok").body == b"secure"

    def test_certificate_is_checked_against_the_name_asked_for(
        self, tls_stub, certificate, monkeypatch
    ):
        # We open the socket to the checked address ourselves; TLS must still verify
        # the name in the address, not the address we connected to.
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        monkeypatch.setattr(http, "resolve", lambda host, port: ["127.0.0.1"])
        with pytest.raises(PullError, match="not valid for 'other.example'"):
            http.http_get(f"https://other.example:{tls_stub.port}/ok")
        assert tls_stub.requests == []


class TestValidateUrl:
    @pytest.mark.parametrize(
        "url", ["https://metrics.example.com", "http://10.0.0.1:9090/api", "https://[2001:db8::1]/"]
    )
    def test_http_addresses_pass(self, url):
        http.validate_url(url)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("", "Enter the address"),
            (None, "Enter the address"),
            ("ftp://example.com/x", "must start with https:// or http://"),
            ("example.com/metrics", "must start with https:// or http://"),
            ("https:///path", "no host name"),
            ("https://user:pw@example.com/", "credentials headers"),
            ("https://example.com:99999/", "invalid port"),
            ("https://example.com/a b", "spaces or control characters"),
        ],
    )
    def test_other_addresses_are_refused(self, url, message):
        with pytest.raises(ValidationError, match=message):
            http.validate_url(url)
