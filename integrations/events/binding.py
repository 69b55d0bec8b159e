"""Which CI an event is about: the event's own CI hints first (id, external id, hostname, IP), then
the binding rules in order (label -> CI field). Everything is resolved a batch at a time, one query
per kind of key, so a storm of thousands of events costs a handful of queries, not one per event."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import String, cast, func, or_, select, tuple_

from cairn.db import MAX_ID, db, id_in
from cairn.errors import Invalid, NotFound
from cmdb.classes import REGISTRY
from cmdb.models import CIExternalId, ConfigurationItem
from integrations.events.models import EventBinding, lock_correlation

# Seeded when the table is empty (as the relationship types are): what Prometheus and most
# monitoring tools put in their labels. Disable one (enabled: false) rather than delete them all.
DEFAULT_RULES = (
    {"position": 10, "label": "instance", "ci_field": "hostname_or_ip"},
    {"position": 20, "label": "hostname", "ci_field": "hostname"},
    {"position": 30, "label": "host", "ci_field": "hostname_or_ip"},
    {"position": 40, "label": "service", "ci_field": "name", "ci_class": "application"},
    {"position": 50, "label": "cluster", "ci_field": "name", "ci_class": "cluster"},
)
MAX_RULES = 200
_CHUNK = 500


@dataclass(frozen=True)
class Key:
    """One way to find the CI: ``field`` (id, external_id, hostname, ip, name), its normalised
    ``value``, the class a name must have, and how to tell the reader where it came from."""

    field: str
    value: object
    ci_class: str | None
    via: str


def rules() -> list[EventBinding]:
    """The binding rules in the order they apply (the defaults seeded into an empty table)."""
    stmt = select(EventBinding).order_by(EventBinding.position, EventBinding.id)
    found = list(db.session.scalars(stmt))
    if found:
        return found
    lock_correlation()  # two workers finding the table empty seed it once
    found = list(db.session.scalars(stmt))
    if found:
        return found
    for spec in DEFAULT_RULES:
        db.session.add(EventBinding(enabled=True, **spec))
    db.session.flush()
    return list(db.session.scalars(stmt))


def create_rule(data: dict) -> EventBinding:
    """Add a binding rule (422 naming the field for an unknown CI class or a missing source)."""
    errors = {}
    if data.get("ci_class") and data["ci_class"] not in REGISTRY:
        errors["ci_class"] = [f"Unknown CI class {data['ci_class']!r}."]
    if data["ci_field"] == "external_id" and not data.get("external_source"):
        errors["external_source"] = ["An external_id rule names the source whose ids the label holds."]
    rules()  # the defaults first, so a first added rule does not hide them
    if db.session.scalar(select(func.count()).select_from(EventBinding)) >= MAX_RULES:
        errors["_schema"] = [f"At most {MAX_RULES} binding rules."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    rule = EventBinding(enabled=data.get("enabled", True), **{k: v for k, v in data.items() if k != "enabled"})
    db.session.add(rule)
    db.session.flush()
    return rule


def get_rule(rule_id: int) -> EventBinding:
    rule = db.session.get(EventBinding, rule_id) if 0 < rule_id <= MAX_ID else None
    if rule is None:
        raise NotFound(f"No event binding rule with id {rule_id}.")
    return rule


def delete_rule(rule: EventBinding) -> None:
    db.session.delete(rule)
    db.session.flush()


# ---------------------------------------------------------------------------------------------
# Keys


def strip_port(value: str) -> str:
    """``web-1:9100`` -> ``web-1``, ``[2001:db8::1]:9100`` -> ``2001:db8::1``; a bare IPv6 is kept."""
    value = value.strip()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host
    return value


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _host_keys(value: str, via: str, *, ip_too: bool) -> list[Key]:
    host = strip_port(str(value)).lower().rstrip(".")
    if not host:
        return []
    address = _ip(host)
    if address is not None:
        return [Key("ip", address, None, via)] if ip_too else []
    return [Key("hostname", host, None, via)]


def keys_of(hints: dict, labels: dict, binding_rules: list[EventBinding]) -> list[Key]:
    """The keys to try for one event, in order: its CI hints, then each enabled rule whose label it has."""
    keys: list[Key] = []
    if isinstance(hints.get("id"), int):
        keys.append(Key("id", hints["id"], None, "ci.id"))
    external = hints.get("external_id")
    if isinstance(external, dict) and external.get("source") and external.get("id"):
        keys.append(Key("external_id", (external["source"], str(external["id"])), None, "ci.external_id"))
    if hints.get("hostname"):
        keys += _host_keys(hints["hostname"], "ci.hostname", ip_too=True)
    if hints.get("ip"):
        address = _ip(strip_port(str(hints["ip"])))
        if address:
            keys.append(Key("ip", address, None, "ci.ip"))
    for rule in binding_rules:
        value = labels.get(rule.label)
        if not rule.enabled or not isinstance(value, str) or not value.strip():
            continue
        via = f"rule {rule.id}: {rule.label} -> {rule.ci_field}"
        if rule.ci_field in ("hostname", "hostname_or_ip"):
            keys += _host_keys(value, via, ip_too=rule.ci_field == "hostname_or_ip")
        elif rule.ci_field == "ip":
            address = _ip(strip_port(value))
            if address:
                keys.append(Key("ip", address, None, via))
        elif rule.ci_field == "name":
            keys.append(Key("name", value.strip().lower(), rule.ci_class, via))
        elif rule.ci_field == "external_id" and rule.external_source:
            keys.append(Key("external_id", (rule.external_source, value.strip()), None, via))
    return keys


# ---------------------------------------------------------------------------------------------
# Resolving a batch of keys


def resolve(keys: set[Key]) -> dict[Key, list[int]]:
    """Every key's matching CIs (one or a few queries per field, whatever the number of keys)."""
    by_field: dict[str, set[Key]] = defaultdict(set)
    for key in keys:
        by_field[key.field].add(key)
    found: dict[Key, list[int]] = {}
    for field, group in by_field.items():
        found.update(_RESOLVERS[field](group))
    return found


def _by_id(keys: set[Key]) -> dict[Key, list[int]]:
    ci = ConfigurationItem
    wanted = [k.value for k in keys if 0 < k.value <= MAX_ID]
    present = set(db.session.scalars(select(ci.id).where(id_in(ci.id, wanted)))) if wanted else set()
    return {k: [k.value] if k.value in present else [] for k in keys}


def _by_external_id(keys: set[Key]) -> dict[Key, list[int]]:
    e = CIExternalId
    pairs = [k.value for k in keys]
    found: dict[tuple, list[int]] = defaultdict(list)
    for i in range(0, len(pairs), _CHUNK):
        rows = db.session.execute(
            select(e.source, e.external_id, e.ci_id).where(tuple_(e.source, e.external_id).in_(pairs[i : i + _CHUNK]))
        )
        for source, external_id, ci_id in rows:
            found[(source, external_id)].append(ci_id)
    return {k: found.get(k.value, []) for k in keys}


def _by_name(keys: set[Key]) -> dict[Key, list[int]]:
    ci = ConfigurationItem
    names = sorted({k.value for k in keys})
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i in range(0, len(names), _CHUNK):
        for cid, name, ci_class in db.session.execute(
            select(ci.id, ci.name, ci.ci_class).where(func.lower(ci.name).in_(names[i : i + _CHUNK]))
        ):
            found[name.lower()].append((cid, ci_class))
    return {k: [cid for cid, c in found.get(k.value, []) if k.ci_class in (None, c)] for k in keys}


def _by_hostname(keys: set[Key]) -> dict[Key, list[int]]:
    """A host is a CI named so, or whose ``hostname``/``fqdn`` attribute says so; a fully qualified
    name also matches its short name. Names first (indexed); the attributes only for the rest."""
    ci = ConfigurationItem
    wanted = {k.value for k in keys} | {k.value.split(".", 1)[0] for k in keys}
    found: dict[str, set[int]] = defaultdict(set)
    ordered = sorted(wanted)
    for i in range(0, len(ordered), _CHUNK):
        for cid, name in db.session.execute(
            select(ci.id, ci.name).where(func.lower(ci.name).in_(ordered[i : i + _CHUNK]))
        ):
            found[name.lower()].add(cid)
    missing = sorted(w for w in wanted if w not in found)
    hostname = func.lower(ci.attributes["hostname"].as_string())
    fqdn = func.lower(ci.attributes["fqdn"].as_string())
    for i in range(0, len(missing), _CHUNK):
        chunk = missing[i : i + _CHUNK]
        for cid, host, full in db.session.execute(
            select(ci.id, hostname, fqdn).where(or_(hostname.in_(chunk), fqdn.in_(chunk)))
        ):
            for value in (host, full):
                if value:
                    found[value].add(cid)
    out = {}
    for k in keys:
        exact = found.get(k.value)
        out[k] = sorted(exact if exact else found.get(k.value.split(".", 1)[0], ()))
    return out


def _by_ip(keys: set[Key]) -> dict[Key, list[int]]:
    """A CI holding the address in ``ip_addresses`` or ``management_ip``: the attributes' text is
    searched for the quoted address (either database), then each match checked exactly."""
    ci = ConfigurationItem
    addresses = sorted({k.value for k in keys})
    found: dict[str, set[int]] = defaultdict(set)
    text = cast(ci.attributes, String)
    for i in range(0, len(addresses), 50):
        chunk = addresses[i : i + 50]
        rows = db.session.execute(select(ci.id, ci.attributes).where(or_(*(text.contains(f'"{a}"') for a in chunk))))
        for cid, attributes in rows:
            held = set((attributes or {}).get("ip_addresses") or []) | {(attributes or {}).get("management_ip")}
            for address in chunk:
                if address in held:
                    found[address].add(cid)
    return {k: sorted(found.get(k.value, ())) for k in keys}


_RESOLVERS = {
    "id": _by_id,
    "external_id": _by_external_id,
    "name": _by_name,
    "hostname": _by_hostname,
    "ip": _by_ip,
}


def bind(keys: list[Key], found: dict[Key, list[int]]) -> tuple[int | None, str]:
    """(the CI, how it was found) from the first key that names exactly one CI; else (None, why)."""
    ambiguous = []
    for key in keys:
        matches = found.get(key, [])
        if len(matches) == 1:
            return matches[0], key.via
        if len(matches) > 1:
            ambiguous.append(f"{key.via} matches {len(matches)} CIs")
    if ambiguous:
        return None, "; ".join(ambiguous)[:200]
    return None, "no hint or rule names a known CI" if keys else "no CI hint and no label a rule binds"
