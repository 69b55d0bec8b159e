"""The class registry lists each class's custom fields (its own and inherited) beside its built-in
attributes; custom hardware classes are physically audited like their built-in ancestors."""

import time_machine

FIELDS = "/api/v1/custom-fields"
CLASSES = "/api/v1/ci-classes"


def _define(client, admin, **body):
    body.setdefault("label", body["name"].replace("_", " ").title())
    response = client.post(FIELDS, headers=admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def _class(client, admin, name, parent, **fields):
    response = client.post(
        CLASSES, headers=admin, json={"name": name, "label": name.title(), "parent": parent, **fields}
    )
    assert response.status_code == 201, response.json
    return response.json


def test_ci_classes_list_their_custom_fields(client, make):
    admin, agent = make.headers("admin"), make.headers("agent")
    made = _class(client, admin, "infusion_pump", "desktop")
    assert made["custom_fields"] == []
    _define(client, admin, name="pci_scope", type="boolean", applies_to={"ci_classes": ["server"]}, group="Compliance")
    _define(client, admin, name="asset_colour", type="text", applies_to={"ci_classes": ["desktop"]})
    _define(
        client,
        admin,
        name="flow_rate",
        type="decimal",
        required=True,
        default=1.5,
        applies_to={"ci_classes": ["infusion_pump"]},
        group="Clinical",
    )
    listed = {c["name"]: c for c in client.get(CLASSES, headers=agent).json}
    assert listed["server"]["custom_fields"] == [
        {
            "name": "pci_scope",
            "label": "Pci Scope",
            "type": "boolean",
            "required": False,
            "group": "Compliance",
            "defined_on": "server",
        }
    ]
    assert "hostname" in listed["server"]["attributes"]["properties"]  # the built-in attributes stay beside them
    pump = client.get(f"{CLASSES}/infusion_pump", headers=agent).json
    assert [(f["name"], f["type"], f["required"], f["group"], f["defined_on"]) for f in pump["custom_fields"]] == [
        ("asset_colour", "text", False, "", "desktop"),
        ("flow_rate", "decimal", True, "Clinical", "infusion_pump"),
    ]
    assert [f["name"] for f in listed["desktop"]["custom_fields"]] == ["asset_colour"]
    assert listed["router"]["custom_fields"] == []
    spec = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert "defined_on" in spec["ClassField"]["properties"]
    assert spec["CIClass"]["properties"]["custom_fields"]["type"] == "array"


def test_custom_hardware_classes_are_physically_audited(client, make, db):
    admin = make.headers("admin")
    manager = make.headers("asset_manager")
    _class(client, admin, "infusion_pump", "desktop")
    _class(client, admin, "syringe_driver", "infusion_pump")  # a grandchild of a hardware class
    _class(client, admin, "lab_vm", "virtual_machine", category="hardware")  # virtual, whatever its category
    with time_machine.travel("2023-01-10 09:00:00Z", tick=False):
        pump = make.ci("infusion_pump", status="deployed", asset_tag="PUMP-1")
        driver = make.ci("syringe_driver", status="deployed", asset_tag="DRV-1")
        vm = make.ci("lab_vm", status="deployed", asset_tag="LVM-1")
        desktop = make.ci("desktop", status="deployed", asset_tag="DSK-1")
    with time_machine.travel("2024-03-01 09:00:00Z", tick=False):
        ids = {r["ci_id"] for r in client.get("/api/v1/reports/audits-overdue", headers=manager).json}
    assert {pump.id, driver.id, desktop.id} <= ids
    assert vm.id not in ids
    # The custom class takes its ancestor's default policy, and a policy of its own applies to it.
    policies = {p["ci_class"]: p for p in client.get("/api/v1/asset-classes", headers=manager).json}
    assert policies["infusion_pump"]["audit_interval_days"] == policies["desktop"]["audit_interval_days"]
    put = client.put("/api/v1/asset-classes/infusion_pump", headers=manager, json={"audit_interval_days": 3650})
    assert put.status_code == 200, put.json
    with time_machine.travel("2024-03-01 09:00:00Z", tick=False):
        ids = {r["ci_id"] for r in client.get("/api/v1/reports/audits-overdue", headers=manager).json}
    assert pump.id not in ids and driver.id in ids
