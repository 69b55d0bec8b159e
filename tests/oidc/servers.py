"""OpenID Connect providers the sign-in tests start on free ports, over real HTTP:

- :class:`NodeProvider`: the `oidc-provider` npm package (pinned in tests/oidc/package.json, run by
  tests/oidc/provider.mjs), a complete provider with its login and consent pages, for the browser.
- :class:`CraftedProvider`: a small provider of our own (discovery, JWKS, authorisation, token and
  userinfo endpoints, RP-initiated logout) whose ID tokens a test can spoil on purpose: expired,
  signed with another key, for another audience, from another issuer, without the nonce. It still
  checks what a provider must: the client's secret, single use of codes, the redirect URI and the
  PKCE verifier against the S256 challenge.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.deploy.topology import free_port, wait_until

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node") or "/usr/bin/node"
CLIENT_ID = "cairn-test"
CLIENT_SECRET = "a client secret for the tests"


def ensure_node_modules() -> None:
    """`npm ci` tests/oidc (its package-lock.json pins oidc-provider) unless done already."""
    if (HERE / "node_modules" / "oidc-provider" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None or not Path(NODE).exists():
        raise RuntimeError("the OpenID Connect tests need node and npm (apt-get install nodejs npm)")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci in {HERE} failed:\n{done.stdout}\n{done.stderr}")


class NodeProvider:
    """oidc-provider on a free port with one client and the given accounts ({login: {email, name, groups}})."""

    def __init__(self, accounts: dict, redirect_uris: list[str], post_logout_redirect_uris: list[str], log_path: Path):
        ensure_node_modules()
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        config = {
            "port": self.port,
            "client": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": redirect_uris,
                "post_logout_redirect_uris": post_logout_redirect_uris,
            },
            "accounts": accounts,
        }
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115
        env = {**os.environ, "OIDC_TEST_CONFIG": json.dumps(config), "NODE_ENV": "test"}
        self.process = subprocess.Popen(
            [NODE, str(HERE / "provider.mjs")], cwd=HERE, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_until(self._up, 30, message=f"oidc-provider (log: {log_path})")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("oidc-provider exited: see its log")
        try:
            return httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def settings(self, **more) -> dict:
        return {
            "CAIRN_OIDC_ISSUER": self.issuer,
            "CAIRN_OIDC_CLIENT_ID": CLIENT_ID,
            "CAIRN_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "CAIRN_OIDC_SCOPES": "openid email profile groups",
            "CAIRN_OIDC_LABEL": "Test SSO",
            **more,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self._log.close()


def _new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


class CraftedProvider:
    """A provider of our own. ``account`` is who signs in at the authorisation endpoint (no page:
    it answers at once). Set ``spoil`` before a sign-in to change its ID token: ``claims`` (merged),
    ``drop`` (claim names removed), ``key`` (an RSAKey to sign with), ``alg``; ``down`` makes every
    endpoint answer 503. ``fetches`` counts the requests per path."""

    def __init__(self):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = self.first_key = _new_key("key-1")
        self.published = [self.key]
        self.account = {"sub": "crafted-1", "email": "carol@example.net", "name": "Carol Crafted", "groups": []}
        self.spoil: dict = {}
        self.down = False
        self.with_end_session = True
        self.codes: dict[str, dict] = {}
        self.fetches: dict[str, int] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def settings(self, **more) -> dict:
        return {
            "CAIRN_OIDC_ISSUER": self.issuer,
            "CAIRN_OIDC_CLIENT_ID": CLIENT_ID,
            "CAIRN_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "CAIRN_OIDC_LABEL": "Crafted SSO",
            **more,
        }

    def rotate(self) -> RSAKey:
        """A new signing key, published beside the old one (what a provider does at rotation)."""
        self.key = _new_key(f"key-{len(self.published) + 1}")
        self.published = [self.key, *self.published]
        return self.key

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # what the endpoints answer ----------------------------------------------------------------

    def discovery(self) -> dict:
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }
        if self.with_end_session:
            document["end_session_endpoint"] = f"{self.issuer}/logout"
        return document

    def authorize(self, query: dict) -> tuple[int, bytes, dict]:
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return 400, b"bad request", {}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, b"PKCE with S256 is required", {}
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "nonce": query.get("nonce"),
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
            "scope": query.get("scope", ""),
            "used": False,
        }
        location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return 302, b"", {"Location": location}

    def token(self, form: dict, authorization: str) -> tuple[int, dict]:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET.replace(' ', '+')}".encode()).decode()
        if authorization != expected:
            return 401, {"error": "invalid_client"}
        grant = self.codes.get(form.get("code", ""))
        if grant is None or grant["used"]:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        grant["used"] = True
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier or redirect_uri mismatch"}
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": grant["nonce"]}
        claims.update(self.account)
        claims.update(self.spoil.get("claims", {}))
        for name in self.spoil.get("drop", ()):
            claims.pop(name, None)
        key = self.spoil.get("key", self.key)
        header = {"alg": self.spoil.get("alg", "RS256"), "kid": key.kid}
        id_token = jwt.encode(header, claims, key, algorithms=[header["alg"]])
        return 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "id_token": id_token}

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body, headers: dict | None = None):
                data = json.dumps(body).encode() if isinstance(body, dict) else body
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if isinstance(body, dict):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str):
                parts = urlsplit(self.path)
                provider.fetches[parts.path] = provider.fetches.get(parts.path, 0) + 1
                if provider.down:
                    return self._answer(503, b"down for maintenance")
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    return self._answer(200, provider.discovery())
                if parts.path == "/jwks":
                    return self._answer(200, {"keys": [k.as_dict(private=False) for k in provider.published]})
                if parts.path == "/authorize":
                    return self._answer(*provider.authorize(query))
                if parts.path == "/token" and method == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                    return self._answer(*provider.token(form, self.headers.get("Authorization", "")))
                if parts.path == "/userinfo":
                    return self._answer(200, dict(provider.account))
                if parts.path == "/logout":
                    return self._answer(200, b"signed out")
                return self._answer(404, {"error": "not_found"})

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

        return Handler
