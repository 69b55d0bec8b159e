"""An agent's ``<CONTENT>`` as a discovered item for integrations/discovery.reconcile.

The class comes from the chassis type (and from VMSYSTEM: anything but Physical is a virtual
machine); the CI holds what its class's attributes can (host name, fqdn, addresses, OS, cores, RAM,
disk), and the rest (BIOS, CPUs, disks, interfaces) is kept with the agent device as ``details``.
Interfaces without a usable MAC (loopback, all zeros) give no identification key.
"""

from __future__ import annotations

import ipaddress
import re
from xml.etree.ElementTree import Element

from cmdb import classes

LAPTOP_CHASSIS = {
    "notebook", "laptop", "portable", "sub notebook", "subnotebook", "hand held", "handheld",
    "convertible", "detachable", "tablet", "lunch box",
}  # fmt: skip
SERVER_CHASSIS = {
    "main server chassis", "rack mount chassis", "rack mount", "multi-system chassis", "blade",
    "blade enclosure", "server", "expansion chassis", "sealed-case pc",
}  # fmt: skip
# What firmware writes where no serial was set.
JUNK_SERIALS = {
    "", "0", "none", "n/a", "na", "default string", "to be filled by o.e.m.", "system serial number",
    "not specified", "not applicable", "0123456789", "123456789", "00000000", "serial", "unknown",
}  # fmt: skip
_ZERO_MAC = re.compile(r"^(00[:-]?){5}00$")
_HOST = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _text(node: Element | None, tag: str) -> str:
    if node is None:
        return ""
    return (node.findtext(tag) or "").strip()


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _serial(value: str) -> str:
    return "" if value.strip().lower() in JUNK_SERIALS else value.strip()[:200]


def ci_class(content: Element) -> str:
    hardware, bios = content.find("HARDWARE"), content.find("BIOS")
    vm = _text(hardware, "VMSYSTEM")
    if vm and vm.lower() != "physical":
        return "virtual_machine"
    chassis = (_text(hardware, "CHASSIS_TYPE") or _text(bios, "TYPE") or _text(bios, "MTYPE")).lower()
    if chassis in LAPTOP_CHASSIS:
        return "laptop"
    if chassis in SERVER_CHASSIS:
        return "server"
    return "desktop"


def _interfaces(content: Element) -> list[dict]:
    found = []
    for net in content.findall("NETWORKS"):
        entry = {
            "name": _text(net, "DESCRIPTION")[:100],
            "mac": _text(net, "MACADDR").lower()[:64],
            "type": _text(net, "TYPE")[:40],
            "status": _text(net, "STATUS")[:20],
            "virtual": _text(net, "VIRTUALDEV") == "1",
            "ip": [],
        }
        for tag in ("IPADDRESS", "IPADDRESS6"):
            for raw in (_text(net, tag) or "").split(","):
                try:
                    address = ipaddress.ip_address(raw.strip().split("%")[0])
                except ValueError:
                    continue
                entry["ip"].append(str(address))
        found.append(entry)
    return found


def _usable_mac(mac: str) -> bool:
    return bool(re.fullmatch(r"([0-9a-f]{2}[:-]){5}[0-9a-f]{2}", mac)) and not _ZERO_MAC.match(mac)


def _usable_ip(text: str) -> bool:
    address = ipaddress.ip_address(text)
    return not (address.is_loopback or address.is_link_local or address.is_unspecified)


def software(content: Element) -> list[dict]:
    """Each installed product once (by name and publisher; the first version listed wins)."""
    seen: dict[tuple[str, str], dict] = {}
    for node in content.findall("SOFTWARES"):
        name = _text(node, "NAME")[:200]
        if not name:
            continue
        publisher = _text(node, "PUBLISHER")[:200]
        key = (" ".join(name.lower().split()), publisher.lower())
        if key in seen:
            continue
        entry = {"name": name, "version": _text(node, "VERSION")[:100], "publisher": publisher}
        installed = _text(node, "INSTALLDATE")[:10]
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4}", installed):
            entry["install_date"] = installed
        seen[key] = entry
    return list(seen.values())


def logged_in_user(content: Element) -> str:
    hardware = content.find("HARDWARE")
    for login in [_text(u, "LOGIN") for u in content.findall("USERS")] + [_text(hardware, "USERID")]:
        if login and login.lower() not in ("wtmp", "root", "system"):
            return login[:200]
    return ""


def to_item(device_id: str, content: Element) -> tuple[dict, dict]:
    """(the discovered item, the details kept with the agent device)."""
    hardware, bios, osys = content.find("HARDWARE"), content.find("BIOS"), content.find("OPERATINGSYSTEM")
    klass = ci_class(content)
    allowed = classes.REGISTRY[klass].attributes._declared_fields
    hostname = _text(hardware, "NAME")[:253]
    fqdn = _text(osys, "FQDN")[:253]
    interfaces = _interfaces(content)
    macs = sorted({i["mac"] for i in interfaces if _usable_mac(i["mac"])})[:64]
    ips = sorted({ip for i in interfaces for ip in i["ip"] if _usable_ip(ip)})[:256]
    cpus = [
        {"name": _text(c, "NAME")[:200], "cores": int(_number(_text(c, "CORE")) or 0),
         "threads": int(_number(_text(c, "THREAD")) or 0), "manufacturer": _text(c, "MANUFACTURER")[:100]}
        for c in content.findall("CPUS")
    ]  # fmt: skip
    storages = [
        {"name": _text(s, "NAME")[:100], "model": _text(s, "MODEL")[:200], "size_mb": _number(_text(s, "DISKSIZE")),
         "serial": _text(s, "SERIALNUMBER")[:200], "type": _text(s, "TYPE")[:40]}
        for s in content.findall("STORAGES")
    ]  # fmt: skip
    attributes: dict = {}
    os_name = _text(osys, "NAME") or _text(hardware, "OSNAME")
    os_version = _text(osys, "VERSION") or _text(hardware, "OSVERSION")
    cores = sum(c["cores"] for c in cpus) or int(_number(_text(hardware, "PROCESSORN")) or 0)
    memory_mb = _number(_text(hardware, "MEMORY"))
    disk_mb = sum(s["size_mb"] or 0 for s in storages if s["type"] in ("disk", "")) or None
    for key, value in (
        ("os", os_name[:100]),
        ("os_version", os_version[:100]),
        ("cpu_cores", min(cores, 4096) or None),
        ("ram_gb", round(memory_mb / 1024, 1) if memory_mb else None),
        ("disk_gb", round(disk_mb / 1000, 1) if disk_mb else None),
    ):
        if value and key in allowed:
            attributes[key] = value
    item: dict = {
        "ci_class": klass,
        "name": hostname or fqdn or device_id[:200],
        "device_id": device_id,
        "attributes": attributes,
        "installed_software": software(content),
    }
    if hostname and _HOST.match(hostname):
        item["hostname"] = hostname
    if "." in fqdn and _HOST.match(fqdn):
        item["fqdn"] = fqdn
    if serial := _serial(_text(bios, "SSN")):
        item["serial_number"] = serial
    for key, tag in (("vendor", "SMANUFACTURER"), ("model", "SMODEL")):
        value = _text(bios, tag)
        if value and value.lower() not in JUNK_SERIALS:
            item[key] = value[:200]
    if macs:
        item["mac_addresses"] = macs
    if ips:
        item["ip_addresses"] = ips
    details = {
        "uuid": _text(hardware, "UUID")[:100],
        "bios": {k.lower(): _text(bios, k)[:200] for k in ("BMANUFACTURER", "BVERSION", "BDATE", "SSN", "SKUNUMBER")},
        "os": {"name": os_name[:200], "version": os_version[:100], "kernel": _text(osys, "KERNEL_VERSION")[:100],
               "arch": _text(osys, "ARCH")[:40], "full_name": _text(osys, "FULL_NAME")[:200]},
        "cpus": cpus,
        "memory_mb": memory_mb,
        "storages": storages,
        "interfaces": interfaces,
        "vm_system": _text(hardware, "VMSYSTEM")[:40],
    }  # fmt: skip
    return item, details
