"""Sending a webhook: SSRF-safe connections and HMAC signatures.

The target's name is resolved once, every address it resolves to is checked, and the connection
goes to the checked address (TLS still verifies the certificate for the name), so a DNS answer that
changes between the check and the connection cannot point a delivery inside the network.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cairn import crypto


class UnsafeTarget(ValueError):
    """The URL is not http(s), or points at an address webhooks may not reach. Its message is for
    the caller and the delivery log: it names the host as given, never an address it resolved to."""


# The names every resolver keeps inside the machine or the local network.
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")  # RFC 6761, 6762, 8375; ICANN 2024
# A host name: letters, digits, hyphens and underscores in dot-separated labels (IDNs in A-labels).
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
# What inet_aton (and so getaddrinfo, and browsers) reads as an IPv4 address: one to four parts,
# each decimal, octal (leading 0) or hex (0x): 2130706433, 0x7f000001, 127.1, 0177.0.0.1.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def check_url(url: str, allow_private: bool) -> tuple[str, str, int, str]:
    """Parse and vet a webhook URL: (scheme, host, port, path with query). Without
    ``allow_private``, a host that is an address (in any notation a resolver reads as one) must be
    a public one, and a name must not be one that only resolves inside the network (localhost,
    single-label names such as ``intranet``); names are resolved and their addresses checked by
    ``vet_url`` (when a subscription is saved) and ``resolve`` (at every delivery)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"Not a valid URL: {exc}.")
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("Only http and https URLs can receive webhooks.")
    if not parts.hostname:
        raise UnsafeTarget("The URL names no host.")
    if parts.username or parts.password:
        raise UnsafeTarget("Credentials in the URL are not allowed; the signature authenticates deliveries.")
    host = parts.hostname
    if not allow_private:
        _check_host(host)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def vet_url(url: str, allow_private: bool) -> str:
    """``check_url``, and the name resolved now: a subscription whose name resolves to a private
    address is refused when it is saved, not only at its first delivery. A name that does not
    resolve (yet, or from here) is accepted: every delivery resolves it again and checks the
    addresses it connects to."""
    _scheme, host, port, _path = check_url(url, allow_private)
    if not allow_private:
        try:
            resolve(host, port, allow_private=False)
        except ConnectionError:
            pass
    return url


def _refused(host: str, how: str) -> UnsafeTarget:
    shown = host if len(host) <= 80 else host[:80] + "…"
    return UnsafeTarget(f"Webhooks may not target {shown}: {how}.")


def _check_host(host: str) -> None:
    literal = _literal_address(host)
    if literal is not None:
        if not _is_public(literal):
            raise _refused(host, "it is a private, loopback, link-local or reserved address")
        return
    name = host.rstrip(".")  # "localhost." is localhost: the trailing dot only roots the name
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeTarget("The URL's host is not a valid name.")
    name = name.lower()
    if not _NAME.match(name):
        raise UnsafeTarget("The URL's host is not a valid name.")
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        raise _refused(host, "it names a host inside the network (loopback or local)")
    if "." not in name:
        raise _refused(host, "a single-label name only resolves inside the network")


def _literal_address(host: str):
    """The address ``host`` spells, in any notation resolvers read as an address; None for a name.
    A host whose last label is a number is an address or nothing (as browsers read URLs)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    labels = host.lower().rstrip(".").split(".")
    if not labels or not _NUMERIC_LABEL.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMERIC_LABEL.match(label) for label in labels):
        raise UnsafeTarget("The URL's host is not a valid address.")
    try:
        return ipaddress.IPv4Address(socket.inet_aton(".".join(labels)))
    except OSError:
        raise UnsafeTarget("The URL's host is not a valid address.")


def _is_public(address) -> bool:
    """A global unicast address, and so is any IPv4 address it carries (mapped, NAT64, 6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(inner is not None and not _is_public(inner) for inner in embedded):
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def resolve(host: str, port: int, allow_private: bool) -> list[tuple]:
    """The addresses to connect to; every one must be allowed (a name with one bad address is
    refused). The refusal does not say which address: the caller learns nothing about the network."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}")
    if not allow_private:
        for info in infos:
            if not _is_public(ipaddress.ip_address(info[4][0].split("%", 1)[0])):
                raise _refused(host, "it resolves to a private address")
    return infos


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, sockaddr_infos, timeout):
        super().__init__(host, port, timeout=timeout)
        self._infos = sockaddr_infos

    def connect(self):
        self.sock = _connect(self._infos, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, sockaddr_infos, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self._infos = sockaddr_infos
        self._ctx = context

    def connect(self):
        sock = _connect(self._infos, self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def _connect(infos, timeout):
    last = None
    for family, socktype, proto, _canon, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        # Small request, small answer on a kept-alive connection: without this, Nagle and delayed
        # ACKs add ~40 ms to every delivery.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or ConnectionError("no address to connect to")


@dataclass
class Response:
    status: int | None
    duration_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender:
    """Posts bodies, keeping one connection per target alive across a batch of deliveries."""

    def __init__(self, timeout: float, allow_private: bool):
        self.timeout = timeout
        self.allow_private = allow_private
        self._connections: dict[tuple, http.client.HTTPConnection] = {}

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        started = time.perf_counter()
        try:
            scheme, host, port, path = check_url(url, self.allow_private)
            for attempt in (0, 1):
                conn = self._connection(scheme, host, port)
                try:
                    conn.request("POST", path, body=body, headers={**headers, "Host": _host_header(host, port)})
                    reply = conn.getresponse()
                    reply.read(65536)
                    if reply.will_close:
                        self._drop(scheme, host, port)
                    return Response(reply.status, _ms(started))
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    self._drop(scheme, host, port)
                    if attempt:
                        raise
        except UnsafeTarget as exc:
            return Response(None, _ms(started), str(exc))
        except (OSError, http.client.HTTPException) as exc:
            self._drop_all_for(url)
            return Response(None, _ms(started), f"{type(exc).__name__}: {exc}"[:1000])
        return Response(None, _ms(started), "no response")

    def _connection(self, scheme, host, port):
        key = (scheme, host, port)
        conn = self._connections.get(key)
        if conn is None:
            infos = resolve(host, port, self.allow_private)
            if scheme == "https":
                conn = _PinnedHTTPSConnection(host, port, infos, self.timeout, ssl.create_default_context())
            else:
                conn = _PinnedHTTPConnection(host, port, infos, self.timeout)
            self._connections[key] = conn
        return conn

    def _drop(self, scheme, host, port):
        conn = self._connections.pop((scheme, host, port), None)
        if conn is not None:
            conn.close()

    def _drop_all_for(self, url):
        try:
            scheme, host, port, _ = check_url(url, True)
        except UnsafeTarget:
            return
        self._drop(scheme, host, port)

    def close(self):
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()


def _host_header(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port in (80, 443) else f"{shown}:{port}"


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``: the X-Cairn-Signature header value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# Secrets are kept encrypted, not hashed: signing needs the secret itself. The key is derived from
# CAIRN_WEBHOOK_KEY, else from SECRET_KEY.
def encrypt_secret(secret: str, key_material: str) -> str:
    return crypto.encrypt_secret(secret, key_material, purpose="webhook-secrets")


def decrypt_secret(token: str, key_material: str) -> str:
    return crypto.decrypt_secret(token, key_material, purpose="webhook-secrets")
