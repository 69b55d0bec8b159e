"""``nmap -oX`` scans: each host that was up, matched to a CI by MAC, then IP address, then host
name; matched CIs are recorded as seen by the scan, the others listed as unmanaged devices.

What a scan says of a host (open services with product and version, OS guesses with their accuracy,
addresses, names) is kept in the run's results: the CI classes' attribute schemas have no place for
it, and a scan of one network never proves a CI's other addresses wrong, so no CI field is written.
"""

from __future__ import annotations

from collections import Counter
from xml.etree.ElementTree import Element, ParseError

import marshmallow as ma
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from sqlalchemy import select

from cairn.audit.context import current_actor
from cairn.config import setting
from cairn.db import db, utcnow
from cairn.errors import Invalid, NotFound
from cmdb import classes
from cmdb import services as cmdb_services
from cmdb.models import ConfigurationItem
from cmdb.schemas import CIWriteSchema
from integrations import discovery
from integrations.sync.models import SyncJob

SOURCE = "nmap"
MAX_HOSTS_IN_RESULTS = 10_000


def max_bytes() -> int:
    return setting("CAIRN_NMAP_MAX_BYTES", 32 * 1024 * 1024)


def parse(data: bytes) -> Element:
    if len(data) > max_bytes():
        raise Invalid(f"The scan is larger than {max_bytes()} bytes.")
    try:
        # nmap writes <!DOCTYPE nmaprun> (no internal subset): a DTD is allowed, entities never are.
        root = fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Invalid(f"The scan's XML is refused: {type(exc).__name__} (entities are not accepted).") from None
    except (ParseError, ValueError, UnicodeError) as exc:
        raise Invalid(f"The scan is not well-formed XML: {exc}.") from None
    if root.tag != "nmaprun":
        raise Invalid(f"Expected an nmap -oX document (<nmaprun>), got <{root.tag[:40]}>.")
    return root


def hosts(root: Element) -> list[dict]:
    found = []
    for host in root.iter("host"):
        status = host.find("status")
        if status is not None and status.get("state") != "up":
            continue
        entry: dict = {"ip_addresses": [], "mac_address": None, "mac_vendor": None, "hostnames": []}
        for address in host.findall("address"):
            kind, value = address.get("addrtype"), (address.get("addr") or "")[:64]
            if kind in ("ipv4", "ipv6"):
                entry["ip_addresses"].append(value)
            elif kind == "mac":
                entry["mac_address"] = discovery.normalise_mac(value)
                entry["mac_vendor"] = (address.get("vendor") or "")[:200] or None
        names = [(h.get("name") or "")[:253].lower() for h in host.iter("hostname")]
        entry["hostnames"] = sorted({n for n in names if n})
        entry["services"] = [
            {
                "port": int(port.get("portid") or 0),
                "protocol": port.get("protocol") or "",
                "service": (port.find("service").get("name") or "") if port.find("service") is not None else "",
                "product": (port.find("service").get("product") or "") if port.find("service") is not None else "",
                "version": (port.find("service").get("version") or "") if port.find("service") is not None else "",
            }
            for port in host.iter("port")
            if port.find("state") is not None and port.find("state").get("state") == "open"
        ][:1000]
        entry["os_guesses"] = [
            {"name": (m.get("name") or "")[:200], "accuracy": int(m.get("accuracy") or 0)} for m in host.iter("osmatch")
        ][:5]
        found.append(entry)
    return found


def _ip_index() -> dict[str, set[int]]:
    index: dict[str, set[int]] = {}
    ci = ConfigurationItem
    for ci_id, attributes in db.session.execute(
        select(ci.id, ci.attributes).where(ci.ci_class != "software").execution_options(yield_per=5000)
    ):
        for ip in (attributes or {}).get("ip_addresses") or []:
            index.setdefault(str(ip), set()).add(ci_id)
    return index


def import_scan(data: bytes) -> SyncJob:
    """Match the scan's hosts to CIs and record the run (kind ``nmap``) with every host's findings."""
    found = hosts(parse(data))
    index, by_ip = discovery.build_index(), _ip_index()
    counts: Counter = Counter(hosts=len(found))
    results, seen = [], set()
    for number, host in enumerate(found):
        candidates, rule = set(), ""
        if host["mac_address"]:
            candidates, rule = index.mac.get(host["mac_address"], set()), "mac_address"
        if not candidates:
            for ip in host["ip_addresses"]:
                candidates |= by_ip.get(ip, set())
            rule = "ip_address"
        if not candidates:
            for name in host["hostnames"]:
                candidates |= index.fqdn.get(name, set()) | index.hostname.get(name, set())
            rule = "hostname"
        if len(candidates) == 1:
            status, ci_id = "matched", next(iter(candidates))
            seen.add(ci_id)
        else:
            status, ci_id = ("ambiguous" if candidates else "unmanaged"), None
        counts[status] += 1
        if len(results) < MAX_HOSTS_IN_RESULTS:
            result = {"index": number, "status": status, **host}
            if ci_id is not None:
                result.update(ci_id=ci_id, rule=rule)
            if status == "ambiguous":
                result.update(matches=sorted(candidates), rule=rule)
            results.append(result)
    now = utcnow()
    discovery.record_seen(SOURCE, seen, now)
    job = SyncJob(
        kind="nmap",
        source=SOURCE,
        status="done",
        actor=current_actor().label,
        counts=dict(counts),
        results=results,
        started_at=now,
        finished_at=now,
    )
    db.session.add(job)
    db.session.flush()
    return job


def addressable_classes() -> list[str]:
    """The CI classes an unmanaged host may become: those whose attributes hold IP addresses."""
    return sorted(name for name, cls in classes.REGISTRY.items() if "ip_addresses" in cls.attributes._declared_fields)


def adopt_host(job_id: int, index: int, ci_class: str, name: str = "") -> ConfigurationItem:
    """Add unmanaged host ``index`` of scan ``job_id`` to the CMDB: a ``ci_class`` CI named ``name``
    (else its host name, else its address) with its addresses and host name, recorded as seen by the
    scan; the scan then lists the host as added, with its CI. Raises Invalid (the class or name is
    refused, as POST /cis would) or NotFound (no such unmanaged host)."""
    job = discovery.get_job(job_id, "nmap")
    entry = next((r for r in job.results or [] if r.get("index") == index and r.get("status") == "unmanaged"), None)
    if entry is None:
        raise NotFound(f"Scan {job_id} lists no unmanaged host {index}.")
    if ci_class not in addressable_classes():
        raise Invalid("The class is invalid.", errors={"ci_class": ["Choose a class that has IP addresses."]})
    declared = classes.REGISTRY[ci_class].attributes._declared_fields
    hostnames = entry.get("hostnames") or []
    attributes: dict = {"ip_addresses": entry.get("ip_addresses") or []}
    if entry.get("mac_address") and "mac_addresses" in declared:
        attributes["mac_addresses"] = [entry["mac_address"]]
    if hostnames and "hostname" in declared:
        attributes["hostname"] = hostnames[0].split(".")[0]
    if hostnames and "." in hostnames[0] and "fqdn" in declared:
        attributes["fqdn"] = hostnames[0]
    name = (name or "").strip() or (hostnames or attributes["ip_addresses"] or [f"host {index}"])[0]
    try:
        data = CIWriteSchema().load({"ci_class": ci_class, "name": name, "attributes": attributes})
    except ma.ValidationError as exc:
        raise Invalid("Some fields are invalid.", errors=exc.messages) from None
    ci = cmdb_services.create_ci(data)
    discovery.record_seen(SOURCE, {ci.id}, job.finished_at or utcnow())
    added = {**entry, "status": "added", "ci_id": ci.id}
    job.results = [added if r is entry else r for r in job.results]
    db.session.flush()
    return ci
