"""Discovery and reconciliation: match discovered items to CIs, decide field by field which source
may write, record who saw what when, and turn installed software into software CIs.

Identification, in order: serial number with vendor, then a normalised MAC address, then an
inventory agent's device id, then the fqdn, then the host name. The first rule that matches decides;
a rule that matches two CIs is reported as ambiguous and nothing is guessed.

Field precedence: ``CAIRN_DISCOVERY_PRECEDENCE`` is JSON ``{field: [source, ...]}`` (``model``,
``attributes.os_version``, ``*`` for the rest), best source first; sources not listed rank after the
listed ones and among themselves the latest report wins. A field whose value was last written by
someone else than a source (an edit by hand) keeps it unless ``CAIRN_DISCOVERY_MANUAL_WINS`` is false.

Installed software comes two ways. ``software`` (the first form) makes a software CI per name, version
and publisher and only ever adds installations. ``installed_software`` (what inventory agents send)
is the device's whole list: a software CI per product (normalised name and publisher), the version and
install date on the ``installed_on`` relationship's note, and the installations this source recorded
on the device before and no longer lists closed (valid_to) through the relations services; a new
version closes the old installation and opens one with the new version, so the history shows upgrades.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import marshmallow as ma
from sqlalchemy import func, select

from cairn.audit.context import current_actor
from cairn.config import setting
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Invalid, NotFound
from cairn.jobs import durable
from cairn.uow import checkpoint
from cmdb import classes
from cmdb import services as cmdb_services
from cmdb.models import ConfigurationItem
from integrations.agents.models import AgentDevice
from integrations.reports.registry import ChartData, register
from integrations.sync.models import CIFieldSource, CISourceSeen, SyncJob
from integrations.sync.schemas import DiscoveredItemSchema, StaleQuerySchema
from relations import services as relations_services
from relations.graph import load_types
from relations.models import Relationship

log = logging.getLogger("cairn.discovery")
PAGE = 1000
MAX_RESULTS = 10_000
_MAC_HEX = re.compile(r"[^0-9a-f]")
TOP_FIELDS = ("vendor", "serial_number", "model")
_item_schema = DiscoveredItemSchema()


def normalise_mac(raw: str) -> str | None:
    """``F8-F2-1E-00-D4-66``, ``f8f2.1e00.d466`` -> ``f8:f2:1e:00:d4:66``; None when not a MAC."""
    digits = _MAC_HEX.sub("", raw.lower())
    if len(digits) != 12:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _host(value: str | None) -> str | None:
    return value.strip().rstrip(".").lower() or None if value else None


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Settings


def precedence() -> dict[str, list[str]]:
    value = setting("CAIRN_DISCOVERY_PRECEDENCE", {})
    return {str(k): [str(s) for s in v] for k, v in (value or {}).items()}


def manual_wins() -> bool:
    return setting("CAIRN_DISCOVERY_MANUAL_WINS", True)


def _rank(order: dict[str, list[str]], field_name: str, source: str) -> int:
    ranking = order.get(field_name, order.get("*", []))
    return ranking.index(source) if source in ranking else len(ranking)


# ---------------------------------------------------------------------------------------------
# The index of existing CIs, built once per run


@dataclass
class Index:
    serial: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    mac: dict[str, set[int]] = field(default_factory=dict)
    fqdn: dict[str, set[int]] = field(default_factory=dict)
    hostname: dict[str, set[int]] = field(default_factory=dict)
    software: dict[tuple[str, str, str], int] = field(default_factory=dict)
    device: dict[str, set[int]] = field(default_factory=dict)

    def add(self, ci_id: int, vendor, serial, attributes: dict | None) -> None:
        attributes = attributes or {}
        if serial:
            self.serial.setdefault(((vendor or "").lower(), serial), set()).add(ci_id)
        for mac in attributes.get("mac_addresses") or []:
            normal = normalise_mac(str(mac))
            if normal:
                self.mac.setdefault(normal, set()).add(ci_id)
        if fqdn := _host(attributes.get("fqdn")):
            self.fqdn.setdefault(fqdn, set()).add(ci_id)
        if hostname := _host(attributes.get("hostname")):
            self.hostname.setdefault(hostname, set()).add(ci_id)

    def identify(self, keys: dict) -> tuple[str, list[int]]:
        """(rule, candidate ids) of the first identification rule with a match, else ("", [])."""
        if keys.get("serial_number"):
            found = self.serial.get(((keys.get("vendor") or "").lower(), keys["serial_number"]))
            if found:
                return "serial_number", sorted(found)
        macs = set()
        for mac in keys.get("macs") or []:
            macs |= self.mac.get(mac, set())
        if macs:
            return "mac_address", sorted(macs)
        if keys.get("device_id") and (found := self.device.get(keys["device_id"])):
            return "device_id", sorted(found)
        for rule in ("fqdn", "hostname"):
            value = keys.get(rule)
            found = getattr(self, rule).get(value) if value else None
            if found:
                return rule, sorted(found)
        return "", []


def build_index() -> Index:
    index = Index()
    ci = ConfigurationItem
    rows = db.session.execute(
        select(ci.id, ci.ci_class, ci.name, ci.vendor, ci.serial_number, ci.attributes).execution_options(
            yield_per=5000
        )
    )
    for ci_id, ci_class, name, vendor, serial, attributes in rows:
        if ci_class == "software":
            attributes = attributes or {}
            key = (_product(name), str(attributes.get("version") or ""), str(attributes.get("publisher") or "").lower())
            index.software.setdefault(key, ci_id)
        else:
            index.add(ci_id, vendor, serial, attributes)
    for device_id, ci_id in db.session.execute(select(AgentDevice.device_id, AgentDevice.ci_id)):
        if ci_id is not None:
            index.device.setdefault(device_id, set()).add(ci_id)
    return index


def _product(name: str) -> str:
    """A software name as matched: lower case, runs of white space as one space."""
    return " ".join(name.lower().split())


# ---------------------------------------------------------------------------------------------
# Reconciliation


@dataclass
class Planned:
    index: int
    item: dict
    keys: dict
    data: dict
    ci_id: int | None = None
    status: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    claims: list[str] = field(default_factory=list)
    errors: dict | None = None
    matches: list[int] | None = None
    rule: str = ""
    held: dict[str, Any] = field(default_factory=dict)


def _desired(item: dict) -> tuple[dict, dict]:
    """The item as CI fields (the class's own attribute names only) and its identification keys."""
    attrs_schema = classes.REGISTRY[item["ci_class"]].attributes._declared_fields
    attributes = dict(item.get("attributes") or {})
    macs = [m for m in (normalise_mac(m) for m in item.get("mac_addresses") or []) if m]
    for key, value in (
        ("hostname", item.get("hostname")),
        ("fqdn", item.get("fqdn")),
        ("mac_addresses", macs or None),
        ("ip_addresses", item.get("ip_addresses") or None),
    ):
        if value is not None and key in attrs_schema:
            attributes[key] = value
    vendor = (item.get("vendor") or "").strip()
    data = {"ci_class": item["ci_class"], "attributes": attributes}
    if vendor:
        data["vendor"] = vendor
    for key in ("serial_number", "model"):
        if item.get(key):
            data[key] = item[key].strip()
    data["name"] = item.get("name") or item.get("hostname") or item.get("fqdn") or item.get("serial_number") or ""
    keys = {
        "serial_number": data.get("serial_number"),
        "vendor": vendor,
        "macs": macs,
        "fqdn": _host(item.get("fqdn")),
        "hostname": _host(item.get("hostname")),
        "device_id": item.get("device_id"),
    }
    return data, keys


def _flatten(data: dict) -> dict[str, Any]:
    flat = {k: data[k] for k in TOP_FIELDS if k in data}
    flat.update({f"attributes.{k}": v for k, v in (data.get("attributes") or {}).items()})
    return flat


def _current(ci: ConfigurationItem, field_name: str):
    if field_name.startswith("attributes."):
        return (ci.attributes or {}).get(field_name[11:])
    value = getattr(ci, field_name)
    return value or None if field_name == "vendor" else value


def _decide(source: str, plan: Planned, ci: ConfigurationItem, provenance: dict, order, manual: bool) -> None:
    """Which of the item's fields this source may write to ``ci``, by precedence and provenance."""
    for name, value in _flatten(plan.data).items():
        current = _current(ci, name)
        prov = provenance.get((ci.id, name))
        if current == value:
            if prov is None or prov[0] != source and _rank(order, name, source) < _rank(order, name, prov[0]):
                plan.claims.append(name)
            continue
        if current in (None, "", []):
            allowed = prov is None or _rank(order, name, source) <= _rank(order, name, prov[0])
        elif prov is None or prov[1] != _digest(current):
            allowed = not manual  # set by hand (or by the API) since a source last wrote it
            if not allowed:
                plan.held[name] = value  # for a person to settle (the discovery page)
        else:
            allowed = prov[0] == source or _rank(order, name, source) <= _rank(order, name, prov[0])
        if allowed:
            plan.fields[name] = value


def _as_update(fields: dict[str, Any]) -> dict:
    update: dict[str, Any] = {}
    for name, value in fields.items():
        if name.startswith("attributes."):
            update.setdefault("attributes", {})[name[11:]] = value
        else:
            update[name] = value
    return update


def reconcile(
    source: str, raw_items: list, *, dry_run: bool = False, on_page=None, matched: dict | None = None
) -> dict:
    """Reconcile discovered items from ``source``; returns ``{counts, results}``. ``dry_run`` says
    what would be created, updated and left ambiguous, and writes nothing. ``on_page(done)`` is
    called after each page (a job commits its progress there: reconciling is idempotent, so a run
    that starts again from the first item after a crash doubles nothing). ``matched``, when given, is
    filled with item index -> the CI it created or matched."""
    outer = db.session.begin_nested() if dry_run else None
    try:
        counts: Counter = Counter(items=len(raw_items))
        results: list[dict] = []
        index = build_index()
        order, manual = precedence(), manual_wins()
        pending_links: list[tuple[Planned, int]] = []
        for start in range(0, len(raw_items), PAGE):
            plans = _reconcile_page(source, raw_items, start, index, order, manual, counts, results, dry_run)
            if matched is not None:
                matched.update((p.index, p.ci_id) for p in plans if p.ci_id and p.status != "error")
            pending_links.extend((p, p.ci_id) for p in plans if p.ci_id and p.item.get("relationships"))
            if on_page is not None and not dry_run:
                on_page(start + PAGE)
        _relationships(pending_links, index, counts, results, dry_run)
    finally:
        if outer is not None:
            outer.rollback()
    return {"counts": dict(counts), "results": results[:MAX_RESULTS]}


def _reconcile_page(source, raw_items, start, index, order, manual, counts, results, dry_run) -> list[Planned]:
    plans: list[Planned] = []
    for offset, raw in enumerate(raw_items[start : start + PAGE]):
        i = start + offset
        try:
            item = _item_schema.load(raw)
        except ma.ValidationError as exc:
            _result(results, counts, i, "error", errors=exc.messages)
            continue
        data, keys = _desired(item)
        if not (keys["serial_number"] or keys["macs"] or keys["fqdn"] or keys["hostname"] or keys["device_id"]):
            message = "Give at least one of serial_number, mac_addresses, device_id, fqdn, hostname."
            _result(results, counts, i, "error", errors={"_item": [message]})
            continue
        plan = Planned(i, item, keys, data)
        plan.rule, candidates = index.identify(keys)
        if len(candidates) > 1:
            plan.status, plan.matches = "ambiguous", candidates
            described = {"name": data["name"], **{k: v for k, v in keys.items() if v and k != "vendor"}}
            _result(results, counts, i, "ambiguous", rule=plan.rule, matches=candidates, item=described)
            continue
        plan.ci_id = candidates[0] if candidates else None
        plans.append(plan)
    existing = {p.ci_id for p in plans if p.ci_id}
    cis = {ci.id: ci for ci in db.session.scalars(select(ConfigurationItem).where(ConfigurationItem.id.in_(existing)))}
    provenance = {
        (row.ci_id, row.field): (row.source, row.value_digest)
        for row in db.session.scalars(select(CIFieldSource).where(CIFieldSource.ci_id.in_(existing)))
    }
    bulk: list[cmdb_services.BulkItem] = []
    for plan in plans:
        if plan.ci_id is None:
            plan.fields = _flatten(plan.data)
            bulk.append(cmdb_services.BulkItem(plan.index, plan.data))
        else:
            _decide(source, plan, cis[plan.ci_id], provenance, order, manual)
            if plan.fields:
                bulk.append(cmdb_services.BulkItem(plan.index, _as_update(plan.fields), ci=cis[plan.ci_id]))
            else:
                plan.status = "unchanged"
    outcomes = {o.index: o for o in cmdb_services.bulk_upsert_cis(bulk)}
    now = utcnow()
    for plan in plans:
        outcome = outcomes.get(plan.index)
        if outcome is not None:
            plan.status = outcome.status
            plan.errors = outcome.errors
            if outcome.id is not None:
                plan.ci_id = outcome.id
                if outcome.status == "created":
                    data = plan.data
                    index.add(outcome.id, data.get("vendor"), data.get("serial_number"), data.get("attributes"))
        extra = {"rule": plan.rule} if plan.rule else {}
        if plan.held and plan.status != "error":
            extra["held"] = plan.held
            counts["held"] += 1
        if dry_run or plan.status in ("created", "error") or plan.fields or plan.held:
            extra["fields"] = sorted(plan.fields) if plan.status != "error" else None
            shown_id = None if dry_run and plan.status == "created" else plan.ci_id  # rolled back: no id
            _result(results, counts, plan.index, plan.status, ci_id=shown_id, errors=plan.errors, **extra)
        else:
            counts[plan.status] += 1
    ok = [p for p in plans if p.ci_id and p.status != "error"]
    _record_seen(source, {p.ci_id for p in ok}, now)
    _record_provenance(source, ok, now)
    _software(source, ok, index, counts, now)
    _installed_software(source, ok, index, counts, now)
    return plans


def _result(results: list, counts: Counter, index: int, status: str, **extra) -> None:
    counts[status] += 1
    if len(results) < MAX_RESULTS:
        results.append({"index": index, "status": status, **{k: v for k, v in extra.items() if v is not None}})


def _upsert(model, rows: list[dict], keys: list[str], update_columns: list[str]) -> None:
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(model)
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: getattr(stmt.excluded, c) for c in update_columns})
    for start in range(0, len(rows), 5000):
        db.session.execute(stmt, rows[start : start + 5000])


def record_seen(source: str, ci_ids: set[int], now) -> None:
    """Record that ``source`` saw these CIs at ``now`` (the stale-CIs report reads it)."""
    _record_seen(source, ci_ids, now)


def _record_seen(source: str, ci_ids: set[int], now) -> None:
    rows = [{"ci_id": ci_id, "source": source, "last_seen_at": now} for ci_id in sorted(ci_ids)]
    _upsert(CISourceSeen, rows, ["ci_id", "source"], ["last_seen_at"])


def _record_provenance(source: str, plans: list[Planned], now) -> None:
    rows, seen = [], set()
    for plan in plans:
        values = _flatten(plan.data)
        written = list(plan.fields) if plan.status in ("created", "updated") else []
        for name in (*written, *plan.claims):
            if (plan.ci_id, name) in seen:
                continue
            seen.add((plan.ci_id, name))
            rows.append(
                {
                    "ci_id": plan.ci_id,
                    "field": name,
                    "source": source,
                    "value_digest": _digest(values[name]),
                    "set_at": now,
                }
            )
    _upsert(CIFieldSource, rows, ["ci_id", "field"], ["source", "value_digest", "set_at"])


# ---------------------------------------------------------------------------------------------
# Installed software


def _software(source: str, plans: list[Planned], index: Index, counts: Counter, now) -> None:
    types = load_types()
    allowed = types["installed_on"].target_classes if "installed_on" in types else ()
    wanted: dict[tuple[str, str, str], dict] = {}
    installs: list[tuple[tuple, int]] = []
    for plan in plans:
        software = plan.item.get("software") or []
        if not software:
            continue
        if not classes.may_take_part(plan.item["ci_class"], "installed_on", allowed):
            counts["software_skipped"] += len(software)
            continue
        for entry in software:
            key = (entry["name"].strip().lower(), entry.get("version") or "", (entry.get("publisher") or "").lower())
            installs.append((key, plan.ci_id))
            if key not in index.software and key not in wanted:
                attributes = {k: entry[k] for k in ("version", "publisher") if entry.get(k)}
                wanted[key] = {
                    "name": entry["name"].strip(),
                    "ci_class": "software",
                    "status": "deployed",
                    "vendor": entry.get("publisher") or "",
                    "attributes": attributes,
                }
    if wanted:
        keys = list(wanted)
        items = [cmdb_services.BulkItem(i, wanted[k]) for i, k in enumerate(keys)]
        for outcome in cmdb_services.bulk_upsert_cis(items):
            if outcome.id is not None:
                index.software[keys[outcome.index]] = outcome.id
                counts["software_created"] += 1
            else:
                counts["software_errors"] += 1
    pairs = {(index.software[key], device) for key, device in installs if key in index.software}
    if not pairs:
        return
    outcomes = relations_services.ensure_relationships(
        [
            {"source_id": s, "target_id": t, "type": "installed_on", "note": f"seen by {source}"}
            for s, t in sorted(pairs)
        ]
    )
    made = sum(1 for _, created in outcomes if created)
    if made:
        counts["installations_created"] += made
    _record_seen(source, {s for s, _ in pairs}, now)


def _installation_note(source: str, entry: dict) -> str:
    note = f"seen by {source}"
    if entry.get("version"):
        note += f"; version {entry['version']}"
    if entry.get("install_date"):
        note += f"; installed {entry['install_date']}"
    return note[:1000]


def _installed_software(source: str, plans: list[Planned], index: Index, counts: Counter, now) -> None:
    """Agents' complete lists: products by name and publisher, version and date on the installation."""
    plans = [p for p in plans if p.item.get("installed_software") is not None]
    if not plans:
        return
    types = load_types()
    allowed = types["installed_on"].target_classes if "installed_on" in types else ()
    wanted: dict[tuple[str, str, str], dict] = {}
    listed: dict[int, dict[int, str]] = {}  # device -> {software CI: note}
    entries: list[tuple[int, tuple, str]] = []
    for plan in plans:
        if not classes.may_take_part(plan.item["ci_class"], "installed_on", allowed):
            counts["software_skipped"] += len(plan.item["installed_software"])
            continue
        listed[plan.ci_id] = {}
        for entry in plan.item["installed_software"]:
            publisher = " ".join(entry.get("publisher", "").split())
            key = (_product(entry["name"]), "", publisher.lower())
            entries.append((plan.ci_id, key, _installation_note(source, entry)))
            if key not in index.software and key not in wanted:
                wanted[key] = {
                    "name": " ".join(entry["name"].split()),
                    "ci_class": "software",
                    "status": "deployed",
                    "vendor": publisher,
                    "attributes": {"publisher": publisher} if publisher else {},
                }
    if wanted:
        keys = list(wanted)
        for outcome in cmdb_services.bulk_upsert_cis(
            [cmdb_services.BulkItem(i, wanted[k]) for i, k in enumerate(keys)]
        ):
            if outcome.id is not None:
                index.software[keys[outcome.index]] = outcome.id
                counts["software_created"] += 1
            else:
                counts["software_errors"] += 1
    for device, key, note in entries:
        if key in index.software:
            listed[device].setdefault(index.software[key], note)
    prefix = f"seen by {source}"
    current: dict[tuple[int, int], Relationship] = {}
    for rel in db.session.scalars(
        select(Relationship).where(
            Relationship.target_id.in_(list(listed)),
            Relationship.type == "installed_on",
            Relationship.valid_to.is_(None),
        )
    ):
        current[(rel.source_id, rel.target_id)] = rel
    closed = 0
    for (software_id, device), rel in current.items():
        note = listed[device].get(software_id)
        mine = rel.note == prefix or rel.note.startswith(prefix + ";")
        if note is None and mine or note is not None and mine and rel.note != note:
            relations_services.delete_relationship(rel)
            closed += 1
    if closed:
        counts["installations_closed"] += closed
    create = [
        {"source_id": software_id, "target_id": device, "type": "installed_on", "note": note}
        for device, notes in listed.items()
        for software_id, note in notes.items()
        if (software_id, device) not in current or current[(software_id, device)].valid_to is not None
    ]
    if create:
        outcomes = relations_services.ensure_relationships(create)
        made = sum(1 for _, created in outcomes if created)
        if made:
            counts["installations_created"] += made
    _record_seen(source, {s for notes in listed.values() for s in notes}, now)


# ---------------------------------------------------------------------------------------------
# Relationships named in items


def _relationships(pending: list[tuple[Planned, int]], index: Index, counts: Counter, results, dry_run) -> None:
    if not pending:
        return
    for plan, ci_id in pending:
        for number, rel in enumerate(plan.item["relationships"]):
            target = rel["target"]
            keys = {
                "serial_number": target.get("serial_number"),
                "vendor": (target.get("vendor") or "").strip(),
                "macs": [m for m in [normalise_mac(target.get("mac_address") or "")] if m],
                "fqdn": _host(target.get("fqdn")),
                "hostname": _host(target.get("hostname")),
            }
            _rule, found = index.identify(keys)
            field_name = f"relationships.{number}"
            if len(found) != 1:
                problem = "matches several CIs" if found else "matches no CI"
                _result(
                    results, counts, plan.index, "relationship_error", errors={field_name: [f"The target {problem}."]}
                )
                continue
            try:
                with db.session.begin_nested():
                    exists = db.session.scalar(
                        select(Relationship.id).where(
                            Relationship.source_id == ci_id,
                            Relationship.target_id == found[0],
                            Relationship.type == rel["type"],
                            Relationship.valid_to.is_(None),
                        )
                    )
                    if exists is None:
                        relations_services.create_relationship(
                            {"source_id": ci_id, "target_id": found[0], "type": rel["type"]}
                        )
                        counts["relationships_created"] += 1
            except Invalid as exc:
                _result(
                    results, counts, plan.index, "relationship_error", errors={field_name: [exc.detail, exc.errors]}
                )


# ---------------------------------------------------------------------------------------------
# Runs


def inline_limit() -> int:
    return setting("CAIRN_DISCOVERY_INLINE_ITEMS", 1000)


def start_run(source: str, items: list, *, dry_run: bool) -> SyncJob:
    """Record a run; small ones are reconciled now, large ones by a job queued once this commits."""
    job = SyncJob(kind="discovery", source=source, dry_run=dry_run, actor=current_actor().label, status="queued")
    db.session.add(job)
    if len(items) <= inline_limit():
        db.session.flush()
        _run(job, items)
    else:
        job.payload = {"items": items}
        db.session.flush()
        durable.queue_row(job, DISCOVERY_JOB, job_id=f"cairn-discovery-{job.id}")
    return job


DISCOVERY_JOB = "integrations.sync.tasks.run_discovery"


def run_inline(source: str, items: list) -> tuple[SyncJob, dict[int, int]]:
    """Record a run and reconcile it now, whatever its size; also item index -> its CI."""
    job = SyncJob(kind="discovery", source=source, dry_run=False, actor=current_actor().label, status="queued")
    db.session.add(job)
    db.session.flush()
    matched: dict[int, int] = {}
    _run(job, items, matched=matched)
    return job, matched


def _run(job: SyncJob, items: list, on_page=None, matched: dict | None = None) -> None:
    job.started_at = job.started_at or utcnow()
    outcome = reconcile(job.source, items, dry_run=job.dry_run, on_page=on_page, matched=matched)
    job.counts, job.results = outcome["counts"], outcome["results"]
    job.status, job.finished_at, job.payload = "done", utcnow(), None


def run_job(job_id: int) -> None:
    """RQ job: reconcile a stored discovery payload, committing page by page with a heartbeat (marks
    the run failed on error). A run whose worker died is picked up again by the durable sweep and
    starts again from the first item (reconciling is idempotent)."""
    job = durable.claim(SyncJob, job_id) if 0 < job_id <= MAX_ID else None
    if job is None or job.kind != "discovery":
        return
    checkpoint()

    def on_page(done: int) -> None:
        job.position, job.heartbeat_at = done, utcnow()
        checkpoint()

    try:
        _run(job, (job.payload or {}).get("items") or [], on_page)
        checkpoint()
    except Exception as exc:
        db.session.rollback()
        job = db.session.get(SyncJob, job_id)
        job.status, job.error, job.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:2000], utcnow()
        checkpoint()
        log.exception("discovery run %s failed", job_id)


def stale_run_ids() -> list[int]:
    return durable.stale_ids(SyncJob, SyncJob.kind == "discovery")


def requeue_run(job_id: int) -> None:
    job = db.session.get(SyncJob, job_id)
    if job is not None:
        durable.queue_row(job, DISCOVERY_JOB, job_id=f"cairn-discovery-{job.id}")


def get_job(job_id: int, kind: str | tuple[str, ...]) -> SyncJob:
    kinds = (kind,) if isinstance(kind, str) else kind
    job = db.session.get(SyncJob, job_id) if 0 < job_id <= MAX_ID else None
    if job is None or job.kind not in kinds:
        raise NotFound(f"No {kinds[0].replace('_', ' ')} run with id {job_id}.")
    return job


def accept_held(job_id: int, index: int) -> ConfigurationItem:
    """A person settles a conflict for the source: the values a manual edit held back in item
    ``index`` of run ``job_id`` are written to the CI (through the CI services: change log, feed)
    and the source owns those fields again, so its later reports keep them current."""
    job = get_job(job_id, "discovery")
    entry = next((r for r in job.results or [] if r.get("index") == index and r.get("held")), None)
    if entry is None or not entry.get("ci_id"):
        raise NotFound(f"Run {job_id} holds back no value of item {index}.")
    ci = db.session.get(ConfigurationItem, entry["ci_id"])
    if ci is None:
        raise NotFound(f"CI {entry['ci_id']} no longer exists.")
    held = entry["held"]
    changed = {name: value for name, value in held.items() if _current(ci, name) != value}
    if changed:
        cmdb_services.update_ci(ci, _as_update(changed))
    now = utcnow()
    rows = [
        {"ci_id": ci.id, "field": name, "source": job.source, "value_digest": _digest(value), "set_at": now}
        for name, value in held.items()
    ]
    _upsert(CIFieldSource, rows, ["ci_id", "field"], ["source", "value_digest", "set_at"])
    settled = {k: v for k, v in entry.items() if k != "held"} | {"accepted": sorted(held)}
    job.results = [settled if r is entry else r for r in job.results]
    db.session.flush()
    return ci


# ---------------------------------------------------------------------------------------------
# The stale-CIs report


def stale_cis_select(days: int):
    last = (
        select(CISourceSeen.ci_id, func.max(CISourceSeen.last_seen_at).label("last_seen_at"))
        .group_by(CISourceSeen.ci_id)
        .subquery()
    )
    cutoff = utcnow() - timedelta(days=days)
    ci = ConfigurationItem
    return (
        select(ci.id, ci.name, ci.ci_class, ci.status, last.c.last_seen_at)
        .join(last, last.c.ci_id == ci.id)
        .where(last.c.last_seen_at < cutoff, ci.status.not_in(("retired", "disposed")))
        .order_by(last.c.last_seen_at, ci.id)
    )


def _stale_chart(rows: list[dict], params: dict) -> ChartData:
    by_class = Counter(row["ci_class"] for row in rows)
    labels = sorted(by_class, key=lambda c: (-by_class[c], c))
    return ChartData(labels=labels, series={"stale CIs": [float(by_class[c]) for c in labels]}, value_label="CIs")


@register(
    "stale-cis",
    "Stale CIs",
    "CIs that a discovery source or import has seen, but no source has seen in the last N days.",
    columns=[
        ("ci_id", "CI id"),
        ("name", "Name"),
        ("ci_class", "Class"),
        ("status", "Status"),
        ("last_seen_at", "Last seen"),
        ("sources", "Sources"),
        ("days_unseen", "Days unseen"),
    ],
    chart=_stale_chart,
    params=StaleQuerySchema,
)
def stale_cis(params: dict) -> list[dict]:
    now = utcnow()
    rows = list(db.session.execute(stale_cis_select(params["days"])))
    sources: dict[int, list[str]] = {}
    ids = [row.id for row in rows]
    for start in range(0, len(ids), 1000):
        for ci_id, source in db.session.execute(
            select(CISourceSeen.ci_id, CISourceSeen.source)
            .where(CISourceSeen.ci_id.in_(ids[start : start + 1000]))
            .order_by(CISourceSeen.source)
        ):
            sources.setdefault(ci_id, []).append(source)
    return [
        {
            "ci_id": row.id,
            "name": row.name,
            "ci_class": row.ci_class,
            "status": row.status,
            "last_seen_at": row.last_seen_at,
            "sources": ", ".join(sources.get(row.id, [])),
            "days_unseen": (now - row.last_seen_at).days,
        }
        for row in rows
    ]
