"""The CI class registry: each class's category and the marshmallow schema of its attributes."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import marshmallow as ma
from flask import has_app_context
from marshmallow import fields, validate
from sqlalchemy import event, select

from cairn.db import db
from cmdb.models import CIClassState, CustomCIClass

CATEGORIES = ("hardware", "software", "cloud", "mobile", "network", "service")

MAC = validate.Regexp(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$", error="Not a MAC address.")
HOSTNAME = validate.Regexp(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$",
    error="Not a valid host name.",
)


class IPAddress(fields.String):
    """An IPv4 or IPv6 address, stored in its canonical text form."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return str(ipaddress.ip_address(text.strip()))
        except ValueError as exc:
            raise ma.ValidationError("Not a valid IP address.") from exc


def _text(max_length=255, **kw):
    return fields.String(validate=validate.Length(max=max_length), **kw)


def _int(minimum=0, maximum=10**9, **kw):
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=maximum), **kw)


def _number(minimum=0, maximum=10**9, **kw):
    return fields.Float(allow_nan=False, validate=validate.Range(min=minimum, max=maximum), **kw)


def _choice(*choices, **kw):
    return fields.String(validate=validate.OneOf(choices), **kw)


def _list(field, max_items=256):
    return fields.List(field, validate=validate.Length(max=max_items))


class Attributes(ma.Schema):
    class Meta:
        unknown = ma.RAISE
        ordered = True


class Networked(Attributes):
    hostname = fields.String(validate=[validate.Length(max=253), HOSTNAME])
    fqdn = fields.String(validate=[validate.Length(max=253), HOSTNAME])
    ip_addresses = _list(IPAddress())
    mac_addresses = _list(fields.String(validate=MAC))


class Computer(Networked):
    os = _text(100)
    os_version = _text(100)
    cpu_cores = _int(1, 4096)
    ram_gb = _number(0, 1_000_000)


class ServerAttributes(Computer):
    disk_gb = _number(0, 10**8)
    rack_units = _int(1, 60)
    is_hypervisor = fields.Boolean()


class VirtualMachineAttributes(Computer):
    disk_gb = _number(0, 10**8)
    hypervisor_type = _choice("vmware", "kvm", "hyperv", "xen", "nutanix", "other")


class ContainerAttributes(Attributes):
    hostname = fields.String(validate=[validate.Length(max=253), HOSTNAME])
    image = _text(500)
    image_tag = _text(128)
    orchestrator = _choice("kubernetes", "nomad", "docker", "ecs", "other")
    namespace = _text(253)


class EndUserComputer(Computer):
    encrypted = fields.Boolean()
    last_seen = fields.Date()


class MobileAttributes(Attributes):
    os = _text(100)
    os_version = _text(100)
    imei = fields.String(validate=validate.Regexp(r"^\d{14,16}$", error="Not an IMEI."))
    phone_number = fields.String(validate=validate.Regexp(r"^\+?[0-9 ()-]{3,30}$", error="Not a phone number."))
    encrypted = fields.Boolean()
    mdm_enrolled = fields.Boolean()


class PrinterAttributes(Networked):
    color = fields.Boolean()
    duplex = fields.Boolean()
    pages_per_minute = _int(1, 1000)


class NetworkDevice(Networked):
    management_ip = IPAddress()
    firmware_version = _text(100)


class SwitchAttributes(NetworkDevice):
    port_count = _int(1, 10_000)
    layer = _choice("access", "distribution", "core", "top_of_rack")


class RouterAttributes(NetworkDevice):
    asn = _int(1, 4_294_967_295)


class FirewallAttributes(NetworkDevice):
    throughput_mbps = _int(1, 10**7)
    ha_mode = _choice("standalone", "active_passive", "active_active")


class AccessPointAttributes(NetworkDevice):
    ssids = _list(_text(32), 64)
    band = _choice("2.4ghz", "5ghz", "6ghz", "dual", "tri")


class LoadBalancerAttributes(NetworkDevice):
    virtual_ips = _list(IPAddress())
    throughput_mbps = _int(1, 10**7)


class StorageAttributes(Networked):
    management_ip = IPAddress()
    capacity_tb = _number(0, 10**6)
    raid_level = _text(20)
    protocol = _choice("nfs", "smb", "iscsi", "fc", "s3", "nvme_of", "other")


class DatabaseAttributes(Attributes):
    engine = _choice("postgresql", "mysql", "mariadb", "oracle", "sqlserver", "mongodb", "redis", "other")
    engine_version = _text(50)
    hostname = fields.String(validate=[validate.Length(max=253), HOSTNAME])
    port = _int(1, 65535)
    instance_name = _text(128)
    size_gb = _number(0, 10**8)


ENVIRONMENTS = ("production", "staging", "test", "development", "disaster_recovery")


class ApplicationAttributes(Attributes):
    version = _text(100)
    url = fields.Url(validate=validate.Length(max=2000))
    environment = _choice(*ENVIRONMENTS)
    language = _text(50)


class SoftwareAttributes(Attributes):
    publisher = _text(200)
    version = _text(100)
    eol_date = fields.Date()
    edition = _text(100)


CLOUD_PROVIDERS = ("aws", "azure", "gcp", "oci", "ibm", "alibaba", "other")


class CloudAccountAttributes(Attributes):
    provider = _choice(*CLOUD_PROVIDERS)
    account_id = _text(100)
    billing_contact = fields.Email()


class CloudServiceAttributes(Attributes):
    provider = _choice(*CLOUD_PROVIDERS)
    region = _text(64)
    account_id = _text(100)
    resource_id = _text(1000)
    service_type = _text(100)


class BusinessServiceAttributes(Attributes):
    sla_tier = _choice("platinum", "gold", "silver", "bronze")
    customer_facing = fields.Boolean()
    business_hours = _text(100)
    rto_minutes = _int(0, 10**6)
    rpo_minutes = _int(0, 10**6)


class ClusterAttributes(Attributes):
    min_members_up = _int(1, 10_000)
    cluster_type = _choice("compute", "database", "storage", "network", "application", "kubernetes")


class RackAttributes(Attributes):
    units = _int(1, 60)
    max_power_kw = _number(0, 1000)


class PowerAttributes(Attributes):
    rated_kw = _number(0, 100_000)
    outlets = _int(0, 1000)
    management_ip = IPAddress()


@dataclass(frozen=True)
class CIClass:
    name: str
    category: str
    label: str
    attributes: type[Attributes]
    parent: str | None = None
    icon: str = ""
    # None: the parent's rules for every relationship type (a built-in class: the types' own lists)
    relationship_types: tuple[str, ...] | None = None
    lifecycle: str = "default"
    builtin: bool = True


_CLASSES = [
    CIClass("server", "hardware", "Server", ServerAttributes),
    CIClass("virtual_machine", "hardware", "Virtual machine", VirtualMachineAttributes),
    CIClass("container", "software", "Container", ContainerAttributes),
    CIClass("laptop", "hardware", "Laptop", EndUserComputer),
    CIClass("desktop", "hardware", "Desktop", EndUserComputer),
    CIClass("mobile_phone", "mobile", "Mobile phone", MobileAttributes),
    CIClass("tablet", "mobile", "Tablet", MobileAttributes),
    CIClass("printer", "hardware", "Printer", PrinterAttributes),
    CIClass("network_switch", "network", "Network switch", SwitchAttributes),
    CIClass("router", "network", "Router", RouterAttributes),
    CIClass("firewall", "network", "Firewall", FirewallAttributes),
    CIClass("access_point", "network", "Wireless access point", AccessPointAttributes),
    CIClass("load_balancer", "network", "Load balancer", LoadBalancerAttributes),
    CIClass("storage", "hardware", "Storage array", StorageAttributes),
    CIClass("database", "software", "Database", DatabaseAttributes),
    CIClass("application", "software", "Application", ApplicationAttributes),
    CIClass("software", "software", "Software product", SoftwareAttributes),
    CIClass("cloud_account", "cloud", "Cloud account", CloudAccountAttributes),
    CIClass("cloud_service", "cloud", "Cloud service", CloudServiceAttributes),
    CIClass("business_service", "service", "Business service", BusinessServiceAttributes),
    CIClass("cluster", "hardware", "Cluster", ClusterAttributes),
    CIClass("rack", "hardware", "Rack", RackAttributes),
    CIClass("pdu", "hardware", "Power distribution unit", PowerAttributes),
    CIClass("ups", "hardware", "Uninterruptible power supply", PowerAttributes),
]

BUILTIN: dict[str, CIClass] = {c.name: c for c in _CLASSES}
_SCHEMAS: dict[type[Attributes], Attributes] = {c.attributes: c.attributes() for c in _CLASSES}


_STATE_ROW = select(CIClassState.version, CIClassState.stamp).where(CIClassState.id == 1)


class Registry(Mapping[str, CIClass]):
    """Every CI class by name: the built-in ones, then the custom ones (``cmdb.custom_classes``).

    Consistency across processes: each transaction that changes a custom class bumps the one-row
    ``ci_class_state`` (version + random stamp). The first lookup of each unit of work (request, job,
    CLI command, each transaction: marked by hooks, see ``install``) reads that row, one primary-key
    lookup, and reloads the custom classes when it moved; later lookups of the same unit cost a
    thread-local read, and answers that only show a class's label or category use ``held`` (no
    lookup). Outside an app context (import time) the registry answers what it holds. The stamp
    tells a rolled-back and reused version from the one this process loaded. A class written by an
    uncommitted transaction is visible to this process's other threads until their next check."""

    def __init__(self, builtin: dict[str, CIClass]):
        self._builtin = builtin
        self._classes = dict(builtin)
        self._state: tuple[int, int] | None = None
        self._unit = threading.local()

    def _current(self) -> dict[str, CIClass]:
        if not getattr(self._unit, "checked", False) and has_app_context():
            self.refresh()
        return self._classes

    def refresh(self, force: bool = False) -> None:
        """Compare the state row with the loaded one; reload the custom classes when it moved."""
        session = db.session()
        with session.no_autoflush:
            # Core on the session's connection: half the cost of the ORM's execution of this lookup.
            row = session.connection().execute(_STATE_ROW).first()
            state = (row[0], row[1]) if row else (0, 0)
            if force or state != self._state:
                rows = session.scalars(select(CustomCIClass).order_by(CustomCIClass.id)).all()
                self._classes = self._build(rows)
                self._state = state
        self._unit.checked = True

    def held(self, name: str) -> CIClass | None:
        """The class as this process holds it, comparing the version only when the name is unknown
        here: for answers that merely show a class's label or category (a CI's ``category``), so a
        GET need not pay the lookup. Whatever decides something (validation, filters) uses ``get``."""
        found = self._classes.get(name)
        return found if found is not None else self.get(name)

    def mark_unchecked(self) -> None:
        self._unit.checked = False

    def _build(self, rows) -> dict[str, CIClass]:
        classes = dict(self._builtin)
        pending = {r.name: r for r in rows}
        while pending:  # parents before children (a parent is built-in or an older custom class)
            ready = [r for r in pending.values() if r.parent in classes]
            if not ready:
                break
            for r in ready:
                parent = classes[r.parent]
                classes[r.name] = CIClass(
                    r.name,
                    r.category,
                    r.label,
                    parent.attributes,
                    parent=r.parent,
                    icon=r.icon or parent.icon,
                    relationship_types=None if r.relationship_types is None else tuple(r.relationship_types),
                    lifecycle=r.lifecycle,
                    builtin=False,
                )
                del pending[r.name]
        return classes

    def __getitem__(self, name: str) -> CIClass:
        return self._current()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._current()

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def get(self, name, default=None):
        return self._current().get(name, default)


REGISTRY = Registry(BUILTIN)


def install() -> None:
    """Every request, and every transaction begun or ended (a job's, a CLI command's, a request's
    next one), makes the first registry lookup after it compare the state row. A unit of work may
    look a class up before it touches the database (a remembered token needs no query), hence all."""
    from flask import request_started
    from flask_sqlalchemy.session import Session

    if not event.contains(Session, "after_begin", _after_begin):
        event.listen(Session, "after_begin", _after_begin)
        event.listen(Session, "after_transaction_end", _after_transaction_end)
    request_started.connect(_request_started, weak=False)


def _after_begin(_session, _transaction, _connection) -> None:
    REGISTRY.mark_unchecked()


def _after_transaction_end(_session, transaction) -> None:
    if transaction.parent is None:  # the unit's transaction (not a savepoint) committed or rolled back
        REGISTRY.mark_unchecked()


def _request_started(_sender, **_extra) -> None:
    REGISTRY.mark_unchecked()


def get_class(name: str) -> CIClass | None:
    return REGISTRY.get(name)


def classes_in(category: str) -> list[str]:
    return [c.name for c in REGISTRY.values() if c.category == category]


def lineage(name: str) -> list[str]:
    """The class, its parent, its parent's parent... up to a built-in class."""
    chain, seen = [], set()
    cls = REGISTRY.get(name)
    while cls is not None and cls.name not in seen:
        chain.append(cls.name)
        seen.add(cls.name)
        cls = REGISTRY.get(cls.parent) if cls.parent else None
    return chain


def may_take_part(ci_class: str, relationship_type: str, allowed: list[str] | tuple[str, ...]) -> bool:
    """Whether a CI of ``ci_class`` may stand at the end of a ``relationship_type`` relationship
    whose rule names ``allowed`` classes (empty: any). A custom class that lists its relationship
    types takes part in exactly those; one that does not follows its parent."""
    for name in lineage(ci_class) or [ci_class]:
        cls = REGISTRY.get(name)
        if cls is None or cls.builtin:
            return not allowed or name in allowed
        if name in allowed:
            return True
        if cls.relationship_types is not None:
            return relationship_type in cls.relationship_types
    return not allowed


class KnownClass(validate.OneOf):
    """A CI class name. The OpenAPI document lists the built-in classes; validation accepts every
    class of the registry, the custom ones added at run time included."""

    def __init__(self):
        super().__init__(tuple(BUILTIN))

    def __call__(self, value):
        if value not in REGISTRY:
            raise ma.ValidationError("Not a CI class (GET /api/v1/ci-classes lists them).")
        return value


def ClassName(**kwargs) -> fields.String:  # noqa: N802 - a field factory, like cairn.api.OneOf
    metadata = {"description": "a CI class: a built-in one (listed) or a custom one from GET /api/v1/ci-classes"}
    return fields.String(validate=KnownClass(), metadata={**metadata, **kwargs.pop("metadata", {})}, **kwargs)


def validate_attributes(ci_class: str, attributes: dict) -> dict:
    """Load ``attributes`` with the class's schema (a custom class: its parent's); raises
    ValidationError on unknown or bad keys. Returns the JSON-ready form (dates as ISO strings)."""
    schema = _SCHEMAS[REGISTRY[ci_class].attributes]
    loaded = schema.load(attributes)
    return schema.dump(loaded)
