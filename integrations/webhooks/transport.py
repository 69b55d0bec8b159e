"""Sending a webhook: SSRF-safe connections and HMAC signatures.

The target's name is resolved once, every address it resolves to is checked, and the connection
goes to the checked address (TLS still verifies the certificate for the name), so a DNS answer that
changes between the check and the connection cannot point a delivery inside the network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class UnsafeTarget(ValueError):
    """The URL is not http(s), or points at an address webhooks may not reach."""


def check_url(url: str, allow_private: bool) -> tuple[str, str, int, str]:
    """Parse and vet a webhook URL: (scheme, host, port, path with query). Literal addresses are
    checked here; names are checked again at every delivery, when they are resolved."""
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
        if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
            raise UnsafeTarget("Webhooks may not target this host (loopback).")
        try:
            _check_address(ipaddress.ip_address(host))
        except ValueError as exc:
            if isinstance(exc, UnsafeTarget):
                raise
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def _check_address(address) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        raise UnsafeTarget(f"Webhooks may not target {address} (private, loopback or link-local).")


def resolve(host: str, port: int, allow_private: bool) -> list[tuple]:
    """The addresses to connect to; every one must be allowed (a name with one bad address is refused)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}")
    if not allow_private:
        for info in infos:
            _check_address(ipaddress.ip_address(info[4][0]))
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


# Secrets are kept encrypted (Fernet: AES-128-CBC + HMAC-SHA256), not hashed: signing needs the
# secret itself. The key is derived from CAIRN_WEBHOOK_KEY, else from SECRET_KEY.
def _fernet(key_material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"cairn-webhook-secrets", info=b"v1").derive(
        key_material.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret: str, key_material: str) -> str:
    return _fernet(key_material).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, key_material: str) -> str:
    try:
        return _fernet(key_material).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("the webhook secret cannot be decrypted with the configured key") from exc
