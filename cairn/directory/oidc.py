"""OpenID Connect sign-in for the web desk: the authorisation code flow with PKCE, and what the
provider's claims make of a user.

The flow (OpenID Connect Core 1.0, section 3.1): :func:`begin` makes a fresh ``state``, ``nonce``
and PKCE verifier (S256, RFC 7636, with Authlib) and the provider's authorisation URL; the caller
keeps them in the browser's signed session, for one use. :func:`finish` checks the ``state`` that
came back, redeems the code at the token endpoint (with the verifier and the client's secret) and
verifies the ID token: its signature against the provider's JWKS (asymmetric algorithms only,
never ``none`` nor an HMAC), its issuer, audience (and ``azp``), expiry and issue time, and that
it carries the nonce this browser was given. Anything else is a :class:`SignInRefused` with a
reason for the sign-in audit; a provider that cannot be reached or answers nonsense is
:class:`ProviderUnavailable` (a 502 for the browser). Nothing here writes to the database.

Caches (per process): the discovery document and the JWKS are kept for
``CAIRN_OIDC_CACHE_SECONDS``. An ID token signed with a key the cached JWKS does not hold makes
one fresh fetch of the JWKS (the provider rotated its keys); such fetches happen at most once per
:data:`JWKS_REFETCH_SECONDS`, so tokens with made-up key ids cannot make Cairn hammer the provider.

:func:`provision` turns verified claims into a user of source ``oidc``, keyed by ``sub``
(``external_id``): created on first sign-in only with ``CAIRN_OIDC_CREATE_USERS``, updated on each
later one (name, e-mail). The groups claim maps to a role and teams through the same
group-mapping table as the directory (cairn/directory/services.py), its rows of source ``oidc``.
When the ID token and userinfo carry no groups claim at all, the role and teams stay as they are
(an admin's choice); when they carry one, even empty, the mappings decide. A local account an
admin made without a password (for single sign-on) is taken by the first sign-in with its
e-mail; one with a password, or a directory account, is never taken over. A deactivated user is
refused. The second
factor of an OIDC user is the provider's business: Cairn does not ask for TOTP.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cairn.audit.context import Actor, acting_as
from cairn.auth import services as auth
from cairn.auth.models import User
from cairn.config import setting
from cairn.db import db
from cairn.errors import Conflict

log = logging.getLogger("cairn.oidc")
OIDC = "oidc"
OIDC_ACTOR = Actor("oidc")
# Asymmetric signatures only: an HMAC would be keyed with the client secret, "none" with nothing.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY_SECONDS = 60  # clock skew allowed on exp, iat and nbf
JWKS_REFETCH_SECONDS = 10
MAX_RESPONSE_BYTES = 1024 * 1024
PENDING_SECONDS = 600  # how long a browser may take at the provider


class SignInRefused(Exception):
    """The sign-in is refused: ``reason`` goes to the sign-in audit, ``status`` to the browser."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ProviderUnavailable(Exception):
    """The provider could not be asked, or answered something that is not OpenID Connect."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    groups_claim: str
    create_users: bool
    label: str
    ca_file: str | None
    timeout: int
    redirect_uri: str | None
    post_logout_redirect_uri: str | None
    cache_seconds: int

    @classmethod
    def from_settings(cls) -> OidcConfig | None:
        """The provider's settings, or None when CAIRN_OIDC_ISSUER or CAIRN_OIDC_CLIENT_ID is unset."""
        issuer = (setting("CAIRN_OIDC_ISSUER", "") or "").strip().rstrip("/")
        client_id = (setting("CAIRN_OIDC_CLIENT_ID", "") or "").strip()
        if not issuer or not client_id:
            return None
        scopes = setting("CAIRN_OIDC_SCOPES", "openid email profile").replace(",", " ").split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        return cls(
            issuer=issuer,
            client_id=client_id,
            client_secret=setting("CAIRN_OIDC_CLIENT_SECRET", "") or "",
            scopes=" ".join(scopes),
            groups_claim=(setting("CAIRN_OIDC_GROUPS_CLAIM", "groups") or "").strip(),
            create_users=setting("CAIRN_OIDC_CREATE_USERS", False),
            label=setting("CAIRN_OIDC_LABEL", "") or "single sign-on",
            ca_file=setting("CAIRN_OIDC_CA_FILE", "") or None,
            timeout=max(1, setting("CAIRN_OIDC_TIMEOUT", 10)),
            redirect_uri=setting("CAIRN_OIDC_REDIRECT_URI", "") or None,
            post_logout_redirect_uri=setting("CAIRN_OIDC_POST_LOGOUT_REDIRECT_URI", "") or None,
            cache_seconds=max(0, setting("CAIRN_OIDC_CACHE_SECONDS", 3600)),
        )


def configured() -> OidcConfig | None:
    return OidcConfig.from_settings()


# --- talking to the provider -----------------------------------------------------------------


def _ssl_context(config: OidcConfig) -> ssl.SSLContext:
    # Certificates are always verified: against CAIRN_OIDC_CA_FILE when set, else the system's store.
    return ssl.create_default_context(cafile=config.ca_file)


def _request(config: OidcConfig, url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """GET (or POST a form to) ``url``; (status, JSON body). Network errors, TLS errors, 5xx and
    bodies that are not a JSON object are ProviderUnavailable; 4xx come back to the caller."""
    if not url.lower().startswith(("https://", "http://")):
        raise ProviderUnavailable(f"not an HTTP URL: {url[:200]}")
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Accept": "application/json", **(headers or {})})
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=config.timeout, context=_ssl_context(config)) as response:
            status, raw = response.status, response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read(MAX_RESPONSE_BYTES + 1)
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError) as exc:
        raise ProviderUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
    if status >= 500:
        raise ProviderUnavailable(f"{url} answered {status}")
    if len(raw) > MAX_RESPONSE_BYTES:
        raise ProviderUnavailable(f"{url} answered more than {MAX_RESPONSE_BYTES} bytes")
    try:
        answer = json.loads(raw)
    except ValueError as exc:
        if status >= 400:
            return status, {}
        raise ProviderUnavailable(f"{url} did not answer JSON") from exc
    if not isinstance(answer, dict):
        raise ProviderUnavailable(f"{url} did not answer a JSON object")
    return status, answer


_lock = threading.Lock()
_metadata: dict[str, tuple[float, dict]] = {}
_jwks: dict[str, tuple[float, KeySet]] = {}
_forced: dict[str, float] = {}  # when each JWKS was last fetched again for an unknown key id


def forget() -> None:
    """Drop the cached discovery documents and key sets (tests; a settings change)."""
    with _lock:
        _metadata.clear()
        _jwks.clear()
        _forced.clear()


def metadata(config: OidcConfig) -> dict:
    """The provider's discovery document (/.well-known/openid-configuration), cached."""
    with _lock:
        cached = _metadata.get(config.issuer)
    if cached is not None and time.monotonic() - cached[0] < config.cache_seconds:
        return cached[1]
    status, document = _request(config, f"{config.issuer}/.well-known/openid-configuration")
    if status != 200:
        raise ProviderUnavailable(f"the discovery document answered {status}")
    if (document.get("issuer") or "").rstrip("/") != config.issuer:
        raise ProviderUnavailable(f"the discovery document names the issuer {document.get('issuer')!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(key), str):
            raise ProviderUnavailable(f"the discovery document has no {key}")
    with _lock:
        _metadata[config.issuer] = (time.monotonic(), document)
    return document


def _key_set(config: OidcConfig, uri: str, refresh: bool = False) -> KeySet:
    with _lock:
        cached = _jwks.get(uri)
    now = time.monotonic()
    if cached is not None and not refresh and now - cached[0] < config.cache_seconds:
        return cached[1]
    if cached is not None and refresh:
        with _lock:
            if now - _forced.get(uri, -JWKS_REFETCH_SECONDS) < JWKS_REFETCH_SECONDS:
                return cached[1]  # refetched a moment ago: made-up key ids cannot hammer the provider
            _forced[uri] = now
    status, document = _request(config, uri)
    if status != 200 or not isinstance(document.get("keys"), list):
        raise ProviderUnavailable(f"the JWKS at {uri} answered {status} without keys")
    usable = [k for k in document["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    try:
        keys = KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError) as exc:
        raise ProviderUnavailable(f"the JWKS at {uri} holds a key that cannot be read: {exc}") from exc
    with _lock:
        _jwks[uri] = (time.monotonic(), keys)
    return keys


def signing_key(config: OidcConfig, uri: str, kid: str | None) -> KeySet:
    """The provider's keys, holding ``kid``: fetched once more when the cached set lacks it."""
    keys = _key_set(config, uri)
    if kid is None or any(k.kid == kid for k in keys.keys):
        return keys
    log.info("OIDC: no key %r in the cached JWKS; fetching it again (key rotation)", kid)
    keys = _key_set(config, uri, refresh=True)
    if not any(k.kid == kid for k in keys.keys):
        raise SignInRefused("unknown signing key", 401)
    return keys


# --- the flow ----------------------------------------------------------------------------------


def begin(config: OidcConfig, redirect_uri: str) -> tuple[str, dict]:
    """The provider's authorisation URL and what the browser's session must keep until it returns."""
    document = metadata(config)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    url = add_params_to_uri(
        document["authorization_endpoint"],
        [
            ("response_type", "code"),
            ("client_id", config.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", config.scopes),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    pending = {
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "redirect_uri": redirect_uri,
        "until": int(time.time()) + PENDING_SECONDS,
    }
    return url, pending


@dataclass
class SignedIn:
    """What a successful flow returns: the verified claims (ID token, then userinfo) and the raw
    ID token (the hint for the provider's sign-out)."""

    claims: dict
    id_token: str


def finish(config: OidcConfig, pending: dict | None, args: dict) -> SignedIn:
    """Check the provider's answer (the callback's query ``args``) against ``pending`` (from
    :func:`begin`, already removed from the session), redeem the code, verify the ID token."""
    import hmac

    if not isinstance(pending, dict) or not isinstance(pending.get("state"), str):
        raise SignInRefused("no sign-in in progress")
    if not hmac.compare_digest(str(args.get("state") or ""), pending["state"]):
        raise SignInRefused("wrong state")
    if not isinstance(pending.get("until"), int) or pending["until"] < time.time():
        raise SignInRefused("sign-in expired")
    if args.get("error"):
        raise SignInRefused(f"provider said {str(args['error'])[:60]}", 401)
    code = str(args.get("code") or "")
    if not code or len(code) > 2000:
        raise SignInRefused("no code")
    document = metadata(config)
    tokens = _redeem(config, document, code, pending)
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise ProviderUnavailable("the token endpoint answered no ID token")
    claims = verify_id_token(config, document, id_token, pending["nonce"])
    claims = _with_userinfo(config, document, claims, tokens.get("access_token"))
    return SignedIn(claims, id_token)


def _redeem(config: OidcConfig, document: dict, code: str, pending: dict) -> dict:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": pending["redirect_uri"],
        "code_verifier": pending["verifier"],
    }
    headers = {}
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if not config.client_secret:
        form["client_id"] = config.client_id  # a public client: PKCE alone
    elif "client_secret_basic" in methods:
        quote = urllib.parse.quote_plus  # RFC 6749 2.3.1: form-encoded, then Basic
        pair = f"{quote(config.client_id)}:{quote(config.client_secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    else:
        form.update(client_id=config.client_id, client_secret=config.client_secret)
    status, answer = _request(config, document["token_endpoint"], form, headers)
    if status != 200:
        error = str(answer.get("error") or f"status {status}")[:60]
        if error == "invalid_client":
            raise ProviderUnavailable("the provider refused Cairn's client credentials (CAIRN_OIDC_CLIENT_ID/SECRET)")
        raise SignInRefused(f"code refused: {error}")
    return answer


def verify_id_token(config: OidcConfig, document: dict, id_token: str, nonce: str) -> dict:
    """The ID token's claims once its signature, issuer, audience, times and nonce are right."""
    try:
        header = jws.extract_compact(id_token.encode()).protected
    except (JoseError, ValueError, TypeError) as exc:
        raise SignInRefused("malformed ID token", 401) from exc
    supported = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in ALGORITHMS if a in supported]
    if header.get("alg") not in algorithms:
        raise SignInRefused(f"ID token algorithm {str(header.get('alg'))[:20]} refused", 401)
    keys = signing_key(config, document["jwks_uri"], header.get("kid"))
    try:
        claims = jwt.decode(id_token, keys, algorithms=algorithms).claims
    except (JoseError, ValueError, TypeError) as exc:
        raise SignInRefused("bad ID token signature", 401) from exc
    now = time.time()
    if claims.get("iss") != document.get("issuer"):
        raise SignInRefused("wrong issuer", 401)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if config.client_id not in audiences:
        raise SignInRefused("wrong audience", 401)
    if len(audiences) > 1 and claims.get("azp") != config.client_id:
        raise SignInRefused("wrong authorised party", 401)
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or exp < now - LEEWAY_SECONDS:
        raise SignInRefused("expired ID token", 401)
    if not isinstance(iat, (int, float)) or iat > now + LEEWAY_SECONDS:
        raise SignInRefused("ID token issued in the future", 401)
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf > now + LEEWAY_SECONDS:
        raise SignInRefused("ID token not yet valid", 401)
    if "nonce" not in claims:
        raise SignInRefused("missing nonce", 401)
    if not isinstance(claims["nonce"], str) or not _same(claims["nonce"], nonce):
        raise SignInRefused("wrong nonce", 401)
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise SignInRefused("no subject", 401)
    return claims


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _with_userinfo(config: OidcConfig, document: dict, claims: dict, access_token) -> dict:
    """Add what the userinfo endpoint says (e-mail, name, groups: many providers put them there,
    not in the ID token). Its ``sub`` must be the ID token's; the ID token's claims win."""
    endpoint = document.get("userinfo_endpoint")
    wanted = ("email", "name", config.groups_claim)
    if not endpoint or not isinstance(access_token, str) or all(k in claims for k in wanted if k):
        return claims
    status, info = _request(config, endpoint, headers={"Authorization": f"Bearer {access_token}"})
    if status != 200:
        log.warning("OIDC userinfo answered %s; signing in with the ID token's claims", status)
        return claims
    if info.get("sub") != claims["sub"]:
        raise SignInRefused("userinfo names another subject", 401)
    return {**info, **claims}


def end_session_url(config: OidcConfig, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
    """Where the browser ends its session at the provider too (RP-initiated logout), or None when
    the provider offers no end_session_endpoint (or cannot be reached: Cairn's sign-out stands)."""
    try:
        endpoint = metadata(config).get("end_session_endpoint")
    except ProviderUnavailable as exc:
        log.warning("OIDC provider unavailable at sign-out: %s", exc)
        return None
    if not isinstance(endpoint, str) or not endpoint.lower().startswith(("https://", "http://")):
        return None
    params = [("client_id", config.client_id), ("post_logout_redirect_uri", post_logout_redirect_uri)]
    if id_token:
        params.insert(0, ("id_token_hint", id_token))
    return add_params_to_uri(endpoint, params)


# --- claims -> user ----------------------------------------------------------------------------


def groups_of(config: OidcConfig, claims: dict) -> set[str] | None:
    """The groups claim's values, lower-cased (None: the claim is absent, leave role and teams be)."""
    if not config.groups_claim or config.groups_claim not in claims:
        return None
    value = claims[config.groups_claim]
    values = value if isinstance(value, list) else [value]
    return {str(v).strip().lower()[:500] for v in values if isinstance(v, (str, int)) and str(v).strip()}


def provision(config: OidcConfig, claims: dict) -> tuple[User | None, str]:
    """The user the verified ``claims`` sign in as: (user, "") or (the user if known, the reason
    it is refused, for the sign-in audit). Writes in a savepoint: a refusal leaves nothing."""
    with acting_as(OIDC_ACTOR):
        try:
            with db.session.begin_nested():
                return _provision(config, claims)
        except (IntegrityError, Conflict):
            log.info("OIDC user %s created meanwhile; applying the claims again", claims.get("sub"))
        with db.session.begin_nested():
            return _provision(config, claims)


def _email(claims: dict) -> str:
    email = claims.get("email")
    return email.strip().lower()[:254] if isinstance(email, str) and "@" in email else ""


def _name(claims: dict, email: str) -> str:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get(k) for k in ("given_name", "family_name")]
        name = " ".join(p for p in parts if isinstance(p, str) and p.strip())
    return (name or "").strip()[:200] or email.split("@")[0]


def _provision(config: OidcConfig, claims: dict) -> tuple[User | None, str]:
    from cairn.directory.services import MappingRules, _move_teams

    subject = claims["sub"][:500]
    email = _email(claims)
    user = db.session.scalar(select(User).where(User.source == OIDC, User.external_id == subject))
    if user is None:
        if not email:
            return None, "no e-mail in claims"
        if claims.get("email_verified") is False:
            return None, "e-mail not verified"
        other = db.session.scalar(select(User).where(User.external_id == subject))
        if other is not None:  # external ids are unique whatever the source: a directory's may look the same
            return other, f"subject is the id of a {other.source} account"
        other = auth.find_user(email)
        if (
            other is not None and other.source == auth.LOCAL and other.password_hash is None and other.active
            and claims.get("email_verified") is True
        ):  # fmt: skip
            # an account an admin made for single sign-on (no password), claimed by a subject whose
            # provider vouches for the address (not merely sends it): this subject is it from now on
            user, other = other, None
            user.source, user.external_id = OIDC, subject
            db.session.flush()
        if other is not None:
            return other, f"e-mail of a {other.source} account"
    if user is not None and not user.active:
        return user, "deactivated"
    groups = groups_of(config, claims)
    rules = MappingRules.load(OIDC)
    if user is None:
        if not config.create_users:
            return None, "no such user (creation not allowed)"
        user = auth.create_user(email, rules.role_for(groups or set()), _name(claims, email))
        user.source, user.external_id = OIDC, subject
        db.session.flush()
    else:
        if email and email != user.email:
            if auth.find_user(email) is None:
                user.email = email
            else:
                log.warning("OIDC: %s's new e-mail %s belongs to another user; kept the old one", subject, email)
        name = _name(claims, user.email)
        if claims.get("name") and name != user.name:
            user.name = name
        if groups is not None:
            role = rules.role_for(groups)
            if role != user.role:
                try:
                    auth.update_user(user, {"role": role})
                except Conflict as exc:
                    log.warning("OIDC: %s keeps role %s: %s", user.email, user.role, exc.detail)
    if groups is not None:
        _move_teams(user, rules.team_ids_for(groups), rules.managed_team_ids)
    db.session.flush()
    return user, ""
