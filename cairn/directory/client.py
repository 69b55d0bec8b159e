"""Talking to the directory (ldap3): the settings, binds, user entries and nested groups.

Nothing here touches Cairn's tables. Every network or TLS failure (server down, timeout, a
certificate that does not verify) becomes :class:`DirectoryUnavailable`, so callers tell "the
directory said no" (a wrong password) from "the directory could not be asked".

Certificates are always verified: against ``CAIRN_LDAP_CA_FILE`` when set, else the system's
store, with the host name checked. There is deliberately no setting to turn validation off.

Nested groups: on Active Directory the server resolves them (the LDAP_MATCHING_RULE_IN_CHAIN
filter, OID 1.2.840.113556.1.4.1941). Elsewhere (OpenLDAP) :class:`GroupIndex` reads every group
under the group base once and walks ``member``/``uniqueMember`` upwards itself, at most
``CAIRN_LDAP_GROUP_DEPTH`` levels and never through a group twice (cycles end).
"""

from __future__ import annotations

import ssl
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from ldap3 import BASE, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from cairn.config import setting

AD_DISABLED_BIT = 0x2  # userAccountControl ACCOUNTDISABLE
IN_CHAIN = "1.2.840.113556.1.4.1941"
GROUP_CLASSES = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))"
MEMBER_ATTRIBUTES = ("member", "uniqueMember")

# What Cairn reads from an entry, by purpose: overridable with CAIRN_LDAP_ATTRIBUTES (JSON).
OPENLDAP_ATTRIBUTES = {
    "id": "entryUUID",
    "mail": "mail",
    "name": "displayName",
    "fallback_name": "cn",
    "phone": "telephoneNumber",
    "department": "departmentNumber",
    "manager": "manager",
}
AD_ATTRIBUTES = {**OPENLDAP_ATTRIBUTES, "id": "objectGUID", "department": "department"}


class DirectoryUnavailable(Exception):
    """The directory could not be asked (down, timed out, TLS refused, misconfigured)."""


@dataclass(frozen=True)
class DirectoryConfig:
    url: str
    start_tls: bool
    ca_file: str | None
    bind_dn: str | None
    bind_password: str | None
    user_dn_template: str | None
    user_base: str
    user_filter: str
    group_base: str
    login_attributes: tuple[str, ...]
    attributes: dict
    active_directory: bool
    disabled_filter: str | None
    timeout: int
    group_depth: int

    @classmethod
    def from_settings(cls) -> DirectoryConfig | None:
        """The directory's settings, or None when ``CAIRN_LDAP_URL`` is not set."""
        url = (setting("CAIRN_LDAP_URL", "") or "").strip()
        if not url:
            return None
        ad = setting("CAIRN_LDAP_ACTIVE_DIRECTORY", False)
        user_base = setting("CAIRN_LDAP_USER_BASE", "")
        logins = setting("CAIRN_LDAP_LOGIN_ATTRIBUTES", "mail userPrincipalName sAMAccountName" if ad else "mail uid")
        return cls(
            url=url,
            start_tls=setting("CAIRN_LDAP_START_TLS", False),
            ca_file=setting("CAIRN_LDAP_CA_FILE", "") or None,
            bind_dn=setting("CAIRN_LDAP_BIND_DN", "") or None,
            bind_password=setting("CAIRN_LDAP_BIND_PASSWORD", "") or None,
            user_dn_template=setting("CAIRN_LDAP_USER_DN_TEMPLATE", "") or None,
            user_base=user_base,
            user_filter=setting(
                "CAIRN_LDAP_USER_FILTER",
                "(&(objectCategory=person)(objectClass=user))" if ad else "(objectClass=person)",
            ),
            group_base=setting("CAIRN_LDAP_GROUP_BASE", "") or user_base,
            login_attributes=tuple(logins.replace(",", " ").split()),
            attributes={**(AD_ATTRIBUTES if ad else OPENLDAP_ATTRIBUTES), **setting("CAIRN_LDAP_ATTRIBUTES", {})},
            active_directory=ad,
            disabled_filter=setting("CAIRN_LDAP_DISABLED_FILTER", "") or None,
            timeout=max(1, setting("CAIRN_LDAP_TIMEOUT", 5)),
            group_depth=setting("CAIRN_LDAP_GROUP_DEPTH", 10),
        )

    def check(self) -> None:
        """Refuse settings that cannot work (an unavailable directory, said clearly in the log)."""
        if not self.url.lower().startswith(("ldap://", "ldaps://")):
            raise DirectoryUnavailable("CAIRN_LDAP_URL must start with ldap:// or ldaps://")
        if self.url.lower().startswith("ldaps://") and self.start_tls:
            raise DirectoryUnavailable("CAIRN_LDAP_START_TLS is for ldap:// URLs; ldaps:// is TLS already")
        if not (self.bind_dn or self.user_dn_template):
            raise DirectoryUnavailable("set CAIRN_LDAP_BIND_DN (search, then bind) or CAIRN_LDAP_USER_DN_TEMPLATE")
        if not self.user_base:
            raise DirectoryUnavailable("set CAIRN_LDAP_USER_BASE")


@dataclass
class DirectoryEntry:
    """One person as the directory describes them."""

    dn: str
    external_id: str
    email: str
    name: str
    phone: str = ""
    department: str = ""
    manager_dn: str = ""
    disabled: bool = False
    groups: set[str] = field(default_factory=set)


def _server(config: DirectoryConfig) -> Server:
    from urllib.parse import urlsplit

    host = urlsplit(config.url).hostname or ""
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file, valid_names=[host], sni=host)
    return Server(config.url, tls=tls, get_info=NONE, connect_timeout=config.timeout)


def connect(config: DirectoryConfig, dn: str | None, password: str | None) -> Connection | None:
    """A connection bound as ``dn``; None when the directory refuses the credentials."""
    config.check()
    if dn is not None and not password:
        return None  # an empty password is an unauthenticated bind, which "succeeds": never
    try:
        connection = Connection(
            _server(config),
            user=dn,
            password=password,
            authentication=SIMPLE if dn else None,
            read_only=True,
            receive_timeout=config.timeout,
            raise_exceptions=False,
            auto_referrals=False,
        )
        connection.open()
        if config.start_tls and not connection.start_tls():
            raise DirectoryUnavailable(f"StartTLS refused: {connection.result.get('description')}")
        if connection.bind():
            return connection
        description = (connection.result or {}).get("description", "")
        connection.unbind()
    except (LDAPException, OSError, ssl.SSLError) as exc:
        raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from exc
    if description in ("invalidCredentials", "invalidDNSyntax", "noSuchObject", "inappropriateAuthentication"):
        return None
    raise DirectoryUnavailable(f"bind refused: {description}")


def service_connection(config: DirectoryConfig) -> Connection:
    """Bound as the service account (CAIRN_LDAP_BIND_DN); what searches and sync use."""
    if not config.bind_dn:
        raise DirectoryUnavailable("this needs a service account: set CAIRN_LDAP_BIND_DN and CAIRN_LDAP_BIND_PASSWORD")
    connection = connect(config, config.bind_dn, config.bind_password)
    if connection is None:
        raise DirectoryUnavailable("the service account's bind was refused (CAIRN_LDAP_BIND_DN / _PASSWORD)")
    return connection


def _search(connection: Connection, base: str, search_filter: str, attributes, scope=SUBTREE) -> list[dict]:
    try:
        if scope == SUBTREE:
            results = connection.extend.standard.paged_search(
                base, search_filter, SUBTREE, attributes=list(attributes), paged_size=500, generator=False
            )
        else:
            connection.search(base, search_filter, scope, attributes=list(attributes))
            results = connection.response or []
    except (LDAPException, OSError, ssl.SSLError) as exc:
        raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from exc
    result = (connection.result or {}).get("description", "success")
    if result == "sizeLimitExceeded":
        # a listing cut short would look like people leaving: never act on one
        raise DirectoryUnavailable("the directory's size limit cut the search short: raise the service account's limit")
    if result not in ("success", "noSuchObject"):
        raise DirectoryUnavailable(f"search refused: {result}")
    return [r for r in results or [] if r.get("type") == "searchResEntry"]


def _first(raw: dict, name: str) -> bytes | None:
    for key, values in raw.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def _text(raw: dict, name: str) -> str:
    value = _first(raw, name)
    return value.decode("utf-8", "replace").strip() if value is not None else ""


def _entry_attributes(config: DirectoryConfig) -> list[str]:
    names = set(config.attributes.values())
    if config.active_directory:
        names.add("userAccountControl")
    return sorted(names)


def to_entry(config: DirectoryConfig, result: dict, disabled_dns: set[str] | None = None) -> DirectoryEntry:
    raw, attrs = result.get("raw_attributes") or {}, config.attributes
    id_value = _first(raw, attrs["id"])
    if id_value is not None and len(id_value) == 16 and attrs["id"].lower() == "objectguid":
        external_id = str(uuid.UUID(bytes_le=id_value))
    elif id_value is not None:
        external_id = id_value.decode("utf-8", "replace")
    else:
        external_id = result["dn"].lower()
    disabled = False
    if config.active_directory:
        flags = _text(raw, "userAccountControl")
        disabled = flags.isdigit() and bool(int(flags) & AD_DISABLED_BIT)
    if disabled_dns is not None and result["dn"].lower() in disabled_dns:
        disabled = True
    return DirectoryEntry(
        dn=result["dn"],
        external_id=external_id[:500],
        email=_text(raw, attrs["mail"]).lower()[:254],
        name=(_text(raw, attrs["name"]) or _text(raw, attrs["fallback_name"]))[:200],
        phone=_text(raw, attrs["phone"])[:50],
        department=_text(raw, attrs["department"])[:200],
        manager_dn=_text(raw, attrs["manager"]),
        disabled=disabled,
    )


def _login_filter(config: DirectoryConfig, login: str) -> str:
    value = escape_filter_chars(login)
    either = "".join(f"({name}={value})" for name in config.login_attributes)
    return f"(&{config.user_filter}(|{either}))"


def _is_disabled(config: DirectoryConfig, connection: Connection, dn: str) -> bool:
    """OpenLDAP: whether the entry matches CAIRN_LDAP_DISABLED_FILTER (AD reads userAccountControl)."""
    if not config.disabled_filter:
        return False
    return bool(_search(connection, dn, config.disabled_filter, ["1.1"], scope=BASE))


def authenticate(config: DirectoryConfig, login: str, password: str) -> tuple[DirectoryEntry | None, str]:
    """Bind as the person ``login`` names (an e-mail or a user name) with ``password``.

    Search-then-bind when a service account is set (the entry is found by CAIRN_LDAP_LOGIN_ATTRIBUTES,
    then bound to), else a direct bind to CAIRN_LDAP_USER_DN_TEMPLATE with ``{login}`` or ``{username}``
    (the part before @). Returns (the entry with its groups, "") or (None, the reason)."""
    config.check()
    if not password:
        return None, "wrong password"
    if config.bind_dn:
        service = service_connection(config)
        try:
            found = _search(service, config.user_base, _login_filter(config, login), _entry_attributes(config))
            if len(found) != 1:
                return None, "unknown e-mail" if not found else "ambiguous login"
            user = connect(config, found[0]["dn"], password)
            if user is None:
                return None, "wrong password"
            user.unbind()
            entry = _complete(config, service, found[0])
        finally:
            service.unbind()
        return entry, ""
    dn = config.user_dn_template.format(login=escape_dn(login), username=escape_dn(login.split("@")[0]))
    user = connect(config, dn, password)
    if user is None:
        return None, "wrong password"
    try:
        if "=" in dn:
            found = _search(user, dn, config.user_filter, _entry_attributes(config), scope=BASE)
        else:  # an AD user principal name or DOMAIN\user: find the entry it names
            found = _search(user, config.user_base, _login_filter(config, login), _entry_attributes(config))
        if len(found) != 1:
            return None, "unknown e-mail"
        return _complete(config, user, found[0]), ""
    finally:
        user.unbind()


def _complete(config: DirectoryConfig, connection: Connection, result: dict) -> DirectoryEntry:
    disabled = {result["dn"].lower()} if _is_disabled(config, connection, result["dn"]) else set()
    entry = to_entry(config, result, disabled)
    entry.groups = groups_of(config, connection, entry.dn)
    return entry


def escape_dn(value: str) -> str:
    from ldap3.utils.dn import escape_rdn

    return escape_rdn(value)


def groups_of(config: DirectoryConfig, connection: Connection, dn: str, index: GroupIndex | None = None) -> set[str]:
    """Every group ``dn`` belongs to, directly or through nested groups, as lower-cased DNs."""
    if config.active_directory:
        chain = f"(&{GROUP_CLASSES}(member:{IN_CHAIN}:={escape_filter_chars(dn)}))"
        return {r["dn"].lower() for r in _search(connection, config.group_base, chain, ["1.1"])}
    index = index or GroupIndex.load(config, connection)
    return index.groups_of(dn)


class GroupIndex:
    """Every group under the group base and its members, read once: nested groups resolved here."""

    def __init__(self, members_of: dict[str, set[str]], max_depth: int):
        self.parents: dict[str, set[str]] = defaultdict(set)
        for group, members in members_of.items():
            for member in members:
                self.parents[member].add(group)
        self.max_depth = max_depth

    @classmethod
    def load(cls, config: DirectoryConfig, connection: Connection) -> GroupIndex:
        members_of = {}
        for result in _search(connection, config.group_base, GROUP_CLASSES, MEMBER_ATTRIBUTES):
            raw = result.get("raw_attributes") or {}
            members = set()
            for key, values in raw.items():
                if key.lower() in ("member", "uniquemember"):
                    members |= {v.decode("utf-8", "replace").lower() for v in values}
            members_of[result["dn"].lower()] = members
        return cls(members_of, config.group_depth)

    def groups_of(self, dn: str) -> set[str]:
        found: set[str] = set()
        frontier = {dn.lower()}
        for _level in range(self.max_depth):
            frontier = {g for member in frontier for g in self.parents.get(member, ())} - found
            if not frontier:
                break
            found |= frontier
        return found


def all_entries(config: DirectoryConfig, connection: Connection) -> list[DirectoryEntry]:
    """Every person under the user base (with the user filter), each with its groups."""
    results = _search(connection, config.user_base, config.user_filter, _entry_attributes(config))
    disabled: set[str] = set()
    if config.disabled_filter and not config.active_directory:
        matching = f"(&{config.user_filter}{config.disabled_filter})"
        disabled = {r["dn"].lower() for r in _search(connection, config.user_base, matching, ["1.1"])}
    index = None if config.active_directory else GroupIndex.load(config, connection)
    entries = []
    for result in results:
        entry = to_entry(config, result, disabled)
        entry.groups = groups_of(config, connection, entry.dn, index)
        entries.append(entry)
    return entries
