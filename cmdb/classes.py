"""The CI class registry: each class's category and the marshmallow schema of its attributes."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import marshmallow as ma
from marshmallow import fields, validate

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

REGISTRY: dict[str, CIClass] = {c.name: c for c in _CLASSES}
_SCHEMAS: dict[str, Attributes] = {c.name: c.attributes() for c in _CLASSES}


def get_class(name: str) -> CIClass | None:
    return REGISTRY.get(name)


def classes_in(category: str) -> list[str]:
    return [c.name for c in _CLASSES if c.category == category]


def validate_attributes(ci_class: str, attributes: dict) -> dict:
    """Load ``attributes`` with the class's schema; raises ValidationError on unknown or bad keys.
    Returns the JSON-ready form (dates as ISO strings)."""
    schema = _SCHEMAS[ci_class]
    loaded = schema.load(attributes)
    return schema.dump(loaded)
