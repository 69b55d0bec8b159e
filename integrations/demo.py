"""`cairn seed-demo`: a realistic estate to explore, built through the services like real data.

Layers, bottom up: datacentre power (UPS, PDUs) and network (core, aggregation, top-of-rack switches,
routers, firewalls), racks, storage, hypervisors in clusters, VMs, databases, applications, business
services; beside them cloud accounts and services, end-user devices, printers and software products.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from cairn.auth.models import Team, User
from cairn.auth.services import create_team, create_token, create_user, set_password
from cairn.db import db
from cmdb.models import ConfigurationItem, Location
from cmdb.services import create_ci, create_location

# The demo's sign-in password (web desk), printed by `cairn seed-demo`; a demo, never production.
DEMO_PASSWORD = "cairn-demo-password"
SIGN_IN_ROLES = ("agent", "change_manager", "requester")
TEAMS = {
    "Service Desk": "servicedesk@example.com",
    "Infrastructure": "infra@example.com",
    "Network": "network@example.com",
    "Database": "dba@example.com",
    "Applications": "apps@example.com",
    "End-User Computing": "euc@example.com",
    "Cloud Platform": "cloud@example.com",
    "Security": "security@example.com",
}
FIRST = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Alan", "Radia",
         "Edsger", "Hedy", "Tim", "Katherine", "Donald", "Shafi", "Vint", "Anita", "John", "Sophie"]  # fmt: skip
LAST = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Turing",
        "Perlman", "Dijkstra", "Lamarr", "Berners-Lee", "Johnson", "Knuth", "Goldwasser", "Cerf", "Borg",
        "McCarthy", "Wilson"]  # fmt: skip
APPLICATIONS = [
    ("Payroll", "Payroll & HR", "critical"),
    ("Web Shop", "Online Sales", "critical"),
    ("CRM", "Customer Care", "high"),
    ("Data Warehouse", "Reporting & Analytics", "medium"),
    ("E-mail Gateway", "Corporate E-mail", "high"),
    ("Intranet", "Employee Portal", "medium"),
    ("ERP Finance", "Finance & Accounting", "critical"),
    ("Ticket Portal", "IT Service Desk", "high"),
]
DB_ENGINES = ["postgresql", "mysql", "sqlserver", "oracle"]
SOFTWARE = [
    ("Microsoft Office", "Microsoft", "2021", date(2026, 10, 13)),
    ("Adobe Acrobat Pro", "Adobe", "2024", None),
    ("Windows 10 Enterprise", "Microsoft", "22H2", date(2025, 10, 14)),
    ("Windows 11 Enterprise", "Microsoft", "24H2", None),
    ("Red Hat Enterprise Linux", "Red Hat", "8", date(2029, 5, 31)),
    ("VMware vSphere", "Broadcom", "8.0", None),
    ("PostgreSQL", "PostgreSQL Global Development Group", "12", date(2024, 11, 21)),
    ("Slack", "Salesforce", "4.41", None),
]


@dataclass
class DemoEstate:
    """What the seed created, by role, so later steps (relationships, tickets) can wire it."""

    cis: dict[str, list[ConfigurationItem]] = field(default_factory=dict)
    users: list[User] = field(default_factory=list)
    teams: dict[str, Team] = field(default_factory=dict)
    admin_token: str | None = None
    # who can sign in to the web desk with DEMO_PASSWORD: (e-mail, role)
    sign_ins: list[tuple[str, str]] = field(default_factory=list)
    tickets: int = 0

    def add(self, role: str, ci: ConfigurationItem) -> ConfigurationItem:
        self.cis.setdefault(role, []).append(ci)
        return ci

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.cis.values())


def estate_exists() -> bool:
    return (db.session.scalar(select(func.count()).select_from(ConfigurationItem)) or 0) > 0


# The first CI the seed makes; finding it means the demo estate was loaded here before.
MARKER = {"vendor": "APC", "serial_number": "UPS00001"}


def loaded_demo() -> ConfigurationItem | None:
    """The CI that shows the demo estate is already in this database, or None."""
    return db.session.scalar(
        select(ConfigurationItem).where(
            ConfigurationItem.vendor == MARKER["vendor"], ConfigurationItem.serial_number == MARKER["serial_number"]
        )
    )


def seed_demo(seed: int = 42) -> DemoEstate:
    """Create the demo estate; returns what was made. The caller commits."""
    rng = random.Random(seed)
    estate = DemoEstate()
    _people(estate, rng)
    rooms = _locations()
    _infrastructure(estate, rng, rooms)
    _services(estate, rng)
    _end_user(estate, rng, rooms)
    _wire(estate, rng)
    _tickets(estate, rng)
    _contracts_and_licences(estate)
    return estate


def _people(estate: DemoEstate, rng: random.Random) -> None:
    admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
    if admin is None:
        admin = create_user("admin@example.com", "admin", "Demo Admin")
    _, estate.admin_token = create_token(admin, "demo")
    for name, email in TEAMS.items():
        team = db.session.scalar(select(Team).where(Team.name == name)) or create_team(name, email)
        estate.teams[name] = team
    roles = ["agent"] * 6 + ["change_manager"] * 2 + ["auditor", "integration"] + ["requester"] * 30
    taken = set(db.session.scalars(select(User.email)))
    for index, role in enumerate(roles):
        first, last = FIRST[index % len(FIRST)], LAST[(index * 7) % len(LAST)]
        email = f"{first}.{last}{index}@example.com".lower()
        if email in taken:
            continue
        estate.users.append(create_user(email, role, f"{first} {last}"))
    staff = [u for u in estate.users if u.role in {"agent", "change_manager"}]
    for team in estate.teams.values():
        team.members = rng.sample(staff, k=min(3, len(staff)))
    # One person of each kind may sign in to the web desk with the demo password.
    desk = [admin] + [next((u for u in estate.users if u.role == role), None) for role in SIGN_IN_ROLES]
    for user in desk:
        if user is not None:
            set_password(user, DEMO_PASSWORD)
            estate.sign_ins.append((user.email, user.role))
    agent = next((u for u in estate.users if u.role == "agent"), None)
    if agent is not None and estate.teams["Service Desk"] not in agent.teams:
        estate.teams["Service Desk"].members.append(agent)


def _locations() -> list[Location]:
    rooms = []
    for site_name, city in (("London DC", "London"), ("Berlin Office", "Berlin")):
        existing = db.session.scalar(select(Location).where(Location.name == site_name))
        if existing is not None:
            rooms.extend(db.session.scalars(select(Location).where(Location.kind == "room")))
            return rooms
        site = create_location({"name": site_name, "kind": "site", "address": city})
        building = create_location({"name": "Main building", "kind": "building", "parent_id": site.id})
        for floor_no in (1, 2):
            floor = create_location({"name": f"Floor {floor_no}", "kind": "floor", "parent_id": building.id})
            for room in ("A", "B"):
                rooms.append(create_location({"name": f"Room {floor_no}{room}", "kind": "room", "parent_id": floor.id}))
    return rooms


def _ci(estate, role, ci_class, name, team, rng, *, location=None, criticality="medium", **fields):
    attributes = fields.pop("attributes", {})
    purchase = date.today() - timedelta(days=rng.randint(60, 2000))
    ci = create_ci(
        {
            "name": name,
            "ci_class": ci_class,
            "status": fields.pop("status", "deployed"),
            "criticality": criticality,
            "owner_team_id": estate.teams[team].id,
            "location_id": location.id if location else None,
            "purchase_date": purchase if ci_class not in {"business_service", "application", "cluster"} else None,
            "warranty_expires": purchase + timedelta(days=3 * 365) if "vendor" in fields else None,
            "attributes": attributes,
            **fields,
        }
    )
    return estate.add(role, ci)


def _ip(rng):
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _infrastructure(estate: DemoEstate, rng: random.Random, rooms: list[Location]) -> None:
    dc_rooms = rooms[:4]
    for i in (1, 2):
        _ci(estate, "ups", "ups", f"ups-{i:02}", "Infrastructure", rng, location=dc_rooms[0],
            criticality="critical", vendor="APC", model="Symmetra PX", serial_number=f"UPS{i:05}",
            attributes={"rated_kw": 100.0})  # fmt: skip
    for i in range(1, 5):
        _ci(estate, "pdu", "pdu", f"pdu-{i:02}", "Infrastructure", rng, location=dc_rooms[i % 2],
            criticality="critical", vendor="Raritan", serial_number=f"PDU{i:05}",
            attributes={"outlets": 24, "rated_kw": 22.0, "management_ip": _ip(rng)})  # fmt: skip
    for i in (1, 2):
        _ci(estate, "core", "network_switch", f"core-sw-{i:02}", "Network", rng, location=dc_rooms[0],
            criticality="critical", vendor="Arista", model="7280R3", serial_number=f"ARC{i:05}",
            asset_tag=f"NET-{i:04}", attributes={"hostname": f"core-sw-{i:02}", "layer": "core",
            "port_count": 48, "management_ip": _ip(rng)})  # fmt: skip
        _ci(estate, "router", "router", f"edge-rtr-{i:02}", "Network", rng, location=dc_rooms[0],
            criticality="critical", vendor="Juniper", model="MX204", serial_number=f"JNR{i:05}",
            attributes={"hostname": f"edge-rtr-{i:02}", "asn": 64512})  # fmt: skip
        _ci(estate, "firewall", "firewall", f"fw-{i:02}", "Security", rng, location=dc_rooms[0],
            criticality="critical", vendor="Palo Alto Networks", model="PA-3430", serial_number=f"PAN{i:05}",
            attributes={"hostname": f"fw-{i:02}", "ha_mode": "active_passive"})  # fmt: skip
        _ci(estate, "load_balancer", "load_balancer", f"lb-{i:02}", "Network", rng, location=dc_rooms[1],
            criticality="high", vendor="F5", model="BIG-IP i5800", serial_number=f"F5B{i:05}",
            attributes={"hostname": f"lb-{i:02}", "virtual_ips": [_ip(rng)]})  # fmt: skip
    for i in range(1, 9):
        room = dc_rooms[i % len(dc_rooms)]
        _ci(estate, "rack", "rack", f"rack-{i:02}", "Infrastructure", rng, location=room,
            vendor="APC", model="NetShelter SX", asset_tag=f"RCK-{i:04}", attributes={"units": 42})  # fmt: skip
        _ci(estate, "tor", "network_switch", f"tor-sw-{i:02}", "Network", rng, location=room,
            criticality="high", vendor="Arista", model="7050X3", serial_number=f"ART{i:05}",
            asset_tag=f"NET-{100 + i:04}", attributes={"hostname": f"tor-sw-{i:02}", "layer": "top_of_rack",
            "port_count": 48})  # fmt: skip
    for i in (1, 2):
        _ci(estate, "storage", "storage", f"san-{i:02}", "Infrastructure", rng, location=dc_rooms[i],
            criticality="critical", vendor="NetApp", model="AFF A400", serial_number=f"NTA{i:05}",
            attributes={"capacity_tb": 200.0, "protocol": "nfs", "hostname": f"san-{i:02}"})  # fmt: skip
    for c in range(1, 4):
        _ci(estate, "cluster", "cluster", f"esx-cluster-{c:02}", "Infrastructure", rng, criticality="high",
            attributes={"min_members_up": 3, "cluster_type": "compute"})  # fmt: skip
        for h in range(1, 6):
            n = (c - 1) * 5 + h
            _ci(estate, "hypervisor", "server", f"esx-{n:02}", "Infrastructure", rng,
                location=dc_rooms[n % len(dc_rooms)], criticality="high", vendor="Dell",
                model="PowerEdge R760", serial_number=f"DELL{n:05}", asset_tag=f"SRV-{n:04}",
                purchase_cost=Decimal("18500.00"), currency="EUR",
                attributes={"hostname": f"esx-{n:02}", "fqdn": f"esx-{n:02}.dc.example.com", "os": "VMware ESXi",
                            "os_version": "8.0", "cpu_cores": 64, "ram_gb": 1024.0, "is_hypervisor": True,
                            "ip_addresses": [_ip(rng)]})  # fmt: skip
    for i in range(1, 91):
        _ci(estate, "vm", "virtual_machine", f"vm-{i:03}", rng.choice(["Infrastructure", "Applications"]), rng,
            attributes={"hostname": f"vm-{i:03}", "os": rng.choice(["Ubuntu", "RHEL", "Windows Server"]),
                        "cpu_cores": rng.choice([2, 4, 8]), "ram_gb": float(rng.choice([8, 16, 32])),
                        "ip_addresses": [_ip(rng)], "hypervisor_type": "vmware"})  # fmt: skip


def _services(estate: DemoEstate, rng: random.Random) -> None:
    for index, (app, service, criticality) in enumerate(APPLICATIONS, start=1):
        _ci(estate, "business_service", "business_service", service, "Service Desk", rng, criticality=criticality,
            attributes={"sla_tier": "gold" if criticality == "critical" else "silver",
                        "customer_facing": index % 2 == 0, "business_hours": "Mon-Fri 08:00-18:00"})  # fmt: skip
        _ci(estate, "application", "application", app, "Applications", rng, criticality=criticality,
            attributes={"environment": "production", "version": f"{rng.randint(1, 9)}.{rng.randint(0, 20)}",
                        "url": f"https://{app.lower().replace(' ', '-')}.example.com"})  # fmt: skip
        engine = DB_ENGINES[index % len(DB_ENGINES)]
        for replica in (1, 2):
            _ci(estate, "database", "database", f"{app.lower().replace(' ', '-')}-db-{replica}", "Database", rng,
                criticality=criticality, attributes={"engine": engine, "port": 5432 if engine == "postgresql"
                else 3306, "hostname": f"db{index}{replica}"})  # fmt: skip
    _ci(estate, "cloud_account", "cloud_account", "AWS production", "Cloud Platform", rng, criticality="high",
        attributes={"provider": "aws", "account_id": "123456789012"})  # fmt: skip
    for name, service_type in (("orders-queue", "sqs"), ("media-bucket", "s3"), ("edge-cdn", "cloudfront"),
                               ("auth-lambda", "lambda")):  # fmt: skip
        _ci(estate, "cloud_service", "cloud_service", name, "Cloud Platform", rng, criticality="high",
            attributes={"provider": "aws", "region": "eu-central-1", "account_id": "123456789012",
                        "service_type": service_type, "resource_id": f"arn:aws:{service_type}:::{name}"})  # fmt: skip
    for name, publisher, version, eol in SOFTWARE:
        attributes = {"publisher": publisher, "version": version}
        if eol:
            attributes["eol_date"] = eol.isoformat()
        _ci(estate, "software", "software", f"{name} {version}", "End-User Computing", rng, status="deployed",
            attributes=attributes)  # fmt: skip


def _end_user(estate: DemoEstate, rng: random.Random, rooms: list[Location]) -> None:
    office = rooms[4:] or rooms
    requesters = [u for u in estate.users if u.role == "requester"]
    for i, user in enumerate(requesters, start=1):
        room = office[i % len(office)]
        _ci(estate, "laptop", "laptop", f"LT-{i:04}", "End-User Computing", rng, location=room, criticality="low",
            vendor="Lenovo", model="ThinkPad T14", serial_number=f"PF{i:06}", asset_tag=f"LAP-{i:04}",
            assigned_to_id=user.id, purchase_cost=Decimal("1450.00"), currency="EUR",
            attributes={"hostname": f"lt-{i:04}", "os": "Windows 11", "encrypted": i % 9 != 0,
                        "cpu_cores": 8, "ram_gb": 32.0})  # fmt: skip
        _ci(estate, "phone", "mobile_phone", f"PH-{i:04}", "End-User Computing", rng, criticality="low",
            vendor="Apple", model="iPhone 15", serial_number=f"APL{i:06}", asset_tag=f"MOB-{i:04}",
            assigned_to_id=user.id, attributes={"os": "iOS", "os_version": "18", "encrypted": True,
            "mdm_enrolled": i % 7 != 0})  # fmt: skip
    for i in range(1, 11):
        _ci(estate, "desktop", "desktop", f"DT-{i:04}", "End-User Computing", rng, location=office[i % len(office)],
            criticality="low", vendor="HP", model="EliteDesk 800", serial_number=f"HPD{i:05}",
            status="in_stock" if i > 7 else "deployed",
            attributes={"hostname": f"dt-{i:04}", "os": "Windows 11"})  # fmt: skip
    for i in range(1, 6):
        _ci(estate, "tablet", "tablet", f"TB-{i:04}", "End-User Computing", rng, criticality="low", vendor="Apple",
            model="iPad Air", serial_number=f"IPD{i:05}", status="in_stock", attributes={"os": "iPadOS"})  # fmt: skip
    for i in range(1, 5):
        _ci(estate, "printer", "printer", f"PRN-{i:02}", "End-User Computing", rng, location=office[i % len(office)],
            criticality="low", vendor="Kyocera", serial_number=f"KYO{i:05}",
            attributes={"hostname": f"prn-{i:02}", "color": i % 2 == 0, "duplex": True})  # fmt: skip
    for i in range(1, 9):
        _ci(estate, "access_point", "access_point", f"ap-{i:02}", "Network", rng, location=office[i % len(office)],
            criticality="medium", vendor="Aruba", serial_number=f"ARU{i:05}",
            attributes={"hostname": f"ap-{i:02}", "band": "dual", "ssids": ["corp", "guest"]})  # fmt: skip
    for i in (1, 2):
        _ci(estate, "office_switch", "network_switch", f"office-sw-{i:02}", "Network", rng,
            location=office[0], criticality="high", vendor="Cisco", serial_number=f"CSC{i:05}",
            attributes={"hostname": f"office-sw-{i:02}", "layer": "access", "port_count": 48})  # fmt: skip


def _wire(estate: DemoEstate, rng: random.Random) -> None:
    """Relationships between the layers, bottom up, through the relations service.

    UPS -> PDUs -> racks (which contain the network, storage and hosts); top-of-rack switches
    uplink to one core switch each (racks 1-4 to core 1, 5-8 to core 2); hosts are members of three
    5-host clusters that need 3 up; VMs run on clusters; each application runs on a 2-VM web tier
    and uses a 2-replica database cluster (either member suffices); business services use
    applications; the web shop sits behind a redundant load-balancer pair and the firewalls.
    End-user devices hang off the office access points and switches; software is installed on
    devices. So a core switch takes down a lot, one cluster node only degrades.
    """
    from relations.services import create_relationship

    cis = {role: list(items) for role, items in estate.cis.items()}

    def link(source, type_, target):
        create_relationship({"source_id": source.id, "type": type_, "target_id": target.id})

    def cluster(name, team, cluster_type, min_up=1, criticality="high"):
        return _ci(estate, "cluster", "cluster", name, team, rng, criticality=criticality,
                   attributes={"min_members_up": min_up, "cluster_type": cluster_type})  # fmt: skip

    ups, pdus, racks, tors = cis["ups"], cis["pdu"], cis["rack"], cis["tor"]
    cores, routers, firewalls, lbs = cis["core"], cis["router"], cis["firewall"], cis["load_balancer"]
    # Power and racks.
    for i, pdu in enumerate(pdus):
        link(pdu, "powered_by", ups[i // 2])
    for i, rack in enumerate(racks):
        link(rack, "powered_by", pdus[i % len(pdus)])
        link(rack, "contains", tors[i])
    # Network: core, edge, load balancers.
    for i in range(2):
        link(racks[i], "contains", cores[i])
        link(racks[i], "contains", routers[i])
        link(racks[i], "contains", firewalls[i])
        link(racks[2 + i], "contains", lbs[i])
        link(firewalls[i], "connected_to", routers[i])
        link(lbs[i], "connected_to", firewalls[i])
        link(lbs[i], "connected_to", cores[i])
    for i, tor in enumerate(tors):
        link(tor, "connected_to", cores[0 if i < len(tors) // 2 else 1])
    lb_pair = cluster("lb-pair", "Network", "network", 1, "critical")
    for lb in lbs:
        link(lb, "member_of", lb_pair)
    # Storage and compute.
    for i, san in enumerate(cis["storage"]):
        link(racks[4 + i], "contains", san)
        link(san, "connected_to", tors[4 + i])
    for n, host in enumerate(cis["hypervisor"]):
        link(racks[n % len(racks)], "contains", host)
        link(host, "connected_to", tors[n % len(tors)])
        link(host, "member_of", cis["cluster"][n // 5])
    for c, esx_cluster in enumerate(cis["cluster"]):
        link(esx_cluster, "depends_on", cis["storage"][c % len(cis["storage"])])
    for i, vm in enumerate(cis["vm"]):
        link(vm, "runs_on", cis["cluster"][i % len(cis["cluster"])])
    # Applications: a web tier of two VMs and a database cluster of two replicas each.
    vms = iter(cis["vm"])
    apps = cis["application"]
    for k, app in enumerate(apps):
        slug = app.name.lower().replace(" ", "-")
        web = cluster(f"{slug}-web", "Applications", "application")
        for _ in range(2):
            link(next(vms), "member_of", web)
        link(app, "depends_on", web)
        db_cluster = cluster(f"{slug}-db-cluster", "Database", "database")
        for replica in cis["database"][2 * k : 2 * k + 2]:
            link(replica, "runs_on", next(vms))
            link(replica, "member_of", db_cluster)
        link(app, "uses", db_cluster)
        link(cis["business_service"][k], "uses", app)
    by_name = {a.name: a for a in apps}
    db_clusters = {c.name: c for c in estate.cis["cluster"]}
    link(by_name["Web Shop"], "depends_on", lb_pair)
    link(by_name["CRM"], "uses", by_name["E-mail Gateway"])
    link(by_name["Intranet"], "uses", by_name["E-mail Gateway"])
    link(by_name["Ticket Portal"], "uses", by_name["E-mail Gateway"])
    link(by_name["Data Warehouse"], "uses", db_clusters["erp-finance-db-cluster"])
    link(by_name["Payroll"], "uses", by_name["ERP Finance"])
    cloud = {c.name: c for c in cis["cloud_service"]}
    for service in cloud.values():
        link(cis["cloud_account"][0], "contains", service)
    for name in ("orders-queue", "media-bucket", "edge-cdn"):
        link(by_name["Web Shop"], "uses", cloud[name])
    link(by_name["Ticket Portal"], "uses", cloud["auth-lambda"])
    # Offices: access points and desktops on the office switches, which reach the DC via the WAN.
    office = cis["office_switch"]
    for i, switch in enumerate(office):
        link(switch, "connected_to", routers[i % len(routers)])
    for i, ap in enumerate(cis["access_point"]):
        link(ap, "connected_to", office[i % len(office)])
    for i, laptop in enumerate(cis["laptop"]):
        link(laptop, "connected_to", cis["access_point"][i % len(cis["access_point"])])
    for i, device in enumerate(cis["desktop"] + cis["printer"]):
        link(device, "connected_to", office[i % len(office)])
    # Software installations.
    software = {s.name.rsplit(" ", 1)[0]: s for s in cis["software"]}
    for laptop in cis["laptop"]:
        for product in ("Microsoft Office", "Windows 11 Enterprise", "Slack"):
            link(software[product], "installed_on", laptop)
    for desktop in cis["desktop"]:
        link(software["Windows 10 Enterprise"], "installed_on", desktop)
        link(software["Adobe Acrobat Pro"], "installed_on", desktop)
    for host in cis["hypervisor"]:
        link(software["VMware vSphere"], "installed_on", host)
    for vm in cis["vm"][::3]:
        link(software["Red Hat Enterprise Linux"], "installed_on", vm)
    for vm in cis["vm"][2::8]:
        link(software["PostgreSQL"], "installed_on", vm)


# (kind, CI role, index, title, impact, urgency, assigned to the demo agent, a public reply)
DEMO_TICKETS = [
    ("incident", "laptop", 0, "Laptop does not boot after the update", 3, 2, True, "We are looking into it."),
    ("incident", "laptop", 1, "Wi-Fi drops every few minutes", 3, 3, False, None),
    ("request", "phone", 2, "New SIM card for my phone", 3, 3, False, None),
    ("incident", "application", 0, "Payroll run fails with a timeout", 1, 1, True, "The database team is on it."),
    ("incident", "application", 1, "Web Shop checkout is slow", 2, 2, False, None),
    ("incident", "vm", 3, "Disk almost full on the VM", 3, 2, True, None),
    ("request", "laptop", 3, "Install Adobe Acrobat Pro", 3, 3, False, None),
    ("incident", "printer", 0, "Printer jams on every page", 3, 2, False, None),
]


def _tickets(estate: DemoEstate, rng: random.Random) -> None:
    """A few open tickets on the demo estate, so the desk has something to show."""
    from tickets.services import add_comment, create_ticket

    agent = next((u for u in estate.users if u.role == "agent"), None)
    desk_team = estate.teams["Service Desk"]
    for kind, role, index, title, impact, urgency, assigned, reply in DEMO_TICKETS:
        cis = estate.cis.get(role) or []
        if not cis:
            continue
        ci = cis[index % len(cis)]
        requester = ci.assigned_to_id or (agent.id if agent else None)
        ticket = create_ticket(
            {
                "kind": kind,
                "title": title,
                "description": f"{title}. Reported on {ci.name}.",
                "impact": impact,
                "urgency": urgency,
                "requester_id": requester,
                "team_id": desk_team.id,
                "assignee_id": agent.id if assigned and agent else None,
                "ci_ids": [ci.id],
            },
            agent,
        )
        if reply and agent is not None:
            add_comment(ticket, reply, False, agent)
        estate.tickets += 1


def _contracts_and_licences(estate: DemoEstate) -> None:
    """Vendors, support contracts ending soon and licences (one product short of seats), so the
    asset manager's views have something to show."""
    from cmdb.assets.services import create_contract, create_licence, create_vendor

    today = date.today()
    vendors = {name: create_vendor({"name": name}) for name in ("Arista", "Lenovo", "Microsoft", "Adobe")}
    core = [ci.id for ci in estate.cis.get("core", []) + estate.cis.get("tor", [])]
    create_contract(
        {"name": "Arista network support", "vendor_id": vendors["Arista"].id, "type": "support",
         "start_date": today - timedelta(days=320), "end_date": today + timedelta(days=45), "notice_days": 30,
         "cost": Decimal("18000.00"), "currency": "EUR", "auto_renew": False, "ci_ids": core}
    )  # fmt: skip
    laptops = [ci.id for ci in estate.cis.get("laptop", [])]
    create_contract(
        {"name": "ThinkPad extended warranty", "vendor_id": vendors["Lenovo"].id, "type": "warranty_extension",
         "start_date": today - timedelta(days=700), "end_date": today + timedelta(days=80),
         "cost": Decimal("4200.00"), "currency": "EUR", "ci_ids": laptops}
    )  # fmt: skip
    software = {ci.name.rsplit(" ", 1)[0]: ci for ci in estate.cis.get("software", [])}
    # seats per product and the price of one: Office is five short of the laptops it is installed on
    seats = {"Microsoft Office": (25, "310.00"), "Slack": (40, "96.00"), "Adobe Acrobat Pro": (12, "250.00")}
    for product, (quantity, price) in seats.items():
        if product in software:
            create_licence(
                {"software_id": software[product].id, "model": "per_device", "quantity": quantity,
                 "start_date": today - timedelta(days=200), "end_date": today + timedelta(days=165),
                 "cost": Decimal(price) * quantity, "currency": "EUR", "reference": f"{product} seats"}
            )  # fmt: skip
