"""Changing a custom field's definition is safe for the values stored: renamed choices are
rewritten, removals that lose values need force, a required field needs a default or fails listing
the CIs that lack one, and every definition change is in the change log."""

from sqlalchemy import select

from cairn.audit.models import ChangeLog
from cmdb.models import ConfigurationItem

FIELDS = "/api/v1/custom-fields"


def define(client, headers, **body):
    body.setdefault("label", body["name"])
    body.setdefault("applies_to", {"ci_classes": ["server"]})
    response = client.post(FIELDS, headers=headers, json=body)
    assert response.status_code == 201, response.json
    return response.json


def server(client, headers, **values):
    response = client.post(
        "/api/v1/cis",
        headers=headers,
        json={"name": f"s-{len(values)}-{id(values)}", "ci_class": "server", "custom_fields": values},
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def values_of(db, ci_id):
    db.session.expire_all()
    return db.session.get(ConfigurationItem, ci_id).custom_fields


def test_renaming_a_choice_rewrites_the_stored_values(client, admin, db):
    tier = define(client, admin, name="tier", type="choice", choices=["gold", "silver"], default="silver")
    tags = define(client, admin, name="tags", type="multi_choice", choices=["pci", "sox", "gdpr"])
    first = server(client, admin, tier="gold", tags=["pci", "gdpr"])
    second = server(client, admin, tier="silver")
    renamed = client.patch(f"{FIELDS}/{tier['id']}", headers=admin, json={"rename_choices": {"silver": "standard"}})
    assert renamed.status_code == 200, renamed.json
    assert renamed.json["choices"] == ["gold", "standard"] and renamed.json["default"] == "standard"
    assert values_of(db, first)["tier"] == "gold" and values_of(db, second)["tier"] == "standard"
    renamed = client.patch(
        f"{FIELDS}/{tags['id']}",
        headers=admin,
        json={"choices": ["pci-dss", "sox", "gdpr"], "rename_choices": {"pci": "pci-dss"}},
    )
    assert renamed.status_code == 200, renamed.json
    assert values_of(db, first)["tags"] == ["pci-dss", "gdpr"]
    log = db.session.scalars(
        select(ChangeLog)
        .where(ChangeLog.object_type == "ci", ChangeLog.object_id == second)
        .order_by(ChangeLog.id.desc())
    ).first()
    assert log.changes["custom_fields"] == [{"tier": "silver"}, {"tier": "standard"}]


def test_the_default_follows_its_renamed_choice(client, admin):
    tier = define(client, admin, name="tier", type="choice", choices=["gold", "silver"], default="silver")
    renamed = client.patch(f"{FIELDS}/{tier['id']}", headers=admin, json={"rename_choices": {"silver": "standard"}})
    assert renamed.status_code == 200 and renamed.json["default"] == "standard"
    wrong = client.patch(f"{FIELDS}/{tier['id']}", headers=admin, json={"rename_choices": {"bronze": "copper"}})
    assert wrong.status_code == 422 and "bronze is not a choice." in wrong.json["errors"]["rename_choices"]


def test_removing_a_choice_that_holds_values_needs_force(client, admin, db):
    tier = define(client, admin, name="tier", type="choice", choices=["gold", "silver", "bronze"])
    holder = server(client, admin, tier="bronze")
    refused = client.patch(f"{FIELDS}/{tier['id']}", headers=admin, json={"choices": ["gold", "silver"]})
    assert refused.status_code == 409 and refused.json["holding"] == 1
    assert values_of(db, holder) == {"tier": "bronze"}
    forced = client.patch(f"{FIELDS}/{tier['id']}?force=true", headers=admin, json={"choices": ["gold", "silver"]})
    assert forced.status_code == 200 and values_of(db, holder) == {}


def test_deleting_a_field_that_holds_values_says_how_many_unless_forced(client, admin, db):
    pci = define(client, admin, name="pci_scope", type="boolean")
    empty = define(client, admin, name="unused", type="text")
    holders = [server(client, admin, pci_scope=True), server(client, admin, pci_scope=False)]
    assert client.delete(f"{FIELDS}/{empty['id']}", headers=admin).status_code == 204
    refused = client.delete(f"{FIELDS}/{pci['id']}", headers=admin)
    assert refused.status_code == 409 and refused.json["holding"] == 2 and "2 CIs" in refused.json["detail"]
    assert client.get(f"{FIELDS}/{pci['id']}", headers=admin).status_code == 200
    assert client.delete(f"{FIELDS}/{pci['id']}?force=true", headers=admin).status_code == 204
    assert all(values_of(db, ci_id) == {} for ci_id in holders)
    assert client.get(f"{FIELDS}/{pci['id']}", headers=admin).status_code == 404
    # the field is gone: a value for it is now an unknown field
    response = client.post(
        "/api/v1/cis", headers=admin, json={"name": "z", "ci_class": "server", "custom_fields": {"pci_scope": True}}
    )
    assert response.status_code == 422


def test_making_a_field_required_needs_a_default_or_lists_the_cis_lacking_it(client, admin, db):
    code = define(client, admin, name="cost_centre", type="text")
    lacking = [server(client, admin), server(client, admin)]
    holding = server(client, admin, cost_centre="CC-1")
    refused = client.patch(f"{FIELDS}/{code['id']}", headers=admin, json={"required": True})
    assert refused.status_code == 422 and refused.json["lacking"] == 2
    assert all(f"CI {ci_id}" in refused.json["errors"]["required"][0] for ci_id in lacking)
    assert client.get(f"{FIELDS}/{code['id']}", headers=admin).json["required"] is False
    ok = client.patch(f"{FIELDS}/{code['id']}", headers=admin, json={"required": True, "default": "CC-0"})
    assert ok.status_code == 200 and ok.json["required"] is True
    assert [values_of(db, ci_id) for ci_id in lacking] == [{"cost_centre": "CC-0"}] * 2
    assert values_of(db, holding) == {"cost_centre": "CC-1"}


def test_narrowing_applies_to_drops_values_only_with_force(client, admin, db):
    field = define(client, admin, name="asset_owner", type="text", applies_to={"ci_classes": ["server", "laptop"]})
    laptop = client.post(
        "/api/v1/cis", headers=admin, json={"name": "l", "ci_class": "laptop", "custom_fields": {"asset_owner": "ann"}}
    ).json["id"]
    refused = client.patch(f"{FIELDS}/{field['id']}", headers=admin, json={"applies_to": {"ci_classes": ["server"]}})
    assert refused.status_code == 409 and refused.json["holding"] == 1
    forced = client.patch(
        f"{FIELDS}/{field['id']}?force=true", headers=admin, json={"applies_to": {"ci_classes": ["server"]}}
    )
    assert forced.status_code == 200 and values_of(db, laptop) == {}


def test_every_definition_change_is_in_the_change_log(client, admin, db):
    field = define(client, admin, name="pci_scope", type="boolean")
    etag = client.get(f"{FIELDS}/{field['id']}", headers=admin).headers["ETag"]
    assert (
        client.patch(
            f"{FIELDS}/{field['id']}", headers={**admin, "If-Match": '"stale"'}, json={"label": "x"}
        ).status_code
        == 412
    )
    assert (
        client.patch(
            f"{FIELDS}/{field['id']}", headers={**admin, "If-Match": etag}, json={"label": "PCI scope"}
        ).status_code
        == 200
    )
    assert client.delete(f"{FIELDS}/{field['id']}", headers=admin).status_code == 204
    rows = db.session.scalars(
        select(ChangeLog)
        .where(ChangeLog.object_type == "custom_field", ChangeLog.object_id == field["id"])
        .order_by(ChangeLog.id)
    ).all()
    assert [r.action for r in rows] == ["create", "update", "delete"]
    assert rows[1].changes["label"] == ["pci_scope", "PCI scope"]


def test_the_command_line_lists_creates_and_deletes(app, client, admin, db):
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=["custom-fields", "create", "rack_unit", "--label", "Rack unit", "--type", "integer",
              "--ci-class", "server", "--min", "1", "--max", "60", "--default", "1", "--required"]
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    listed = runner.invoke(args=["custom-fields", "list"])
    assert "rack_unit\tinteger required\tserver" in listed.output
    bad = runner.invoke(args=["custom-fields", "create", "x", "--label", "X", "--type", "text", "--regex", "(a+)+"])
    assert bad.exit_code == 1 and "applies_to" in bad.output and "backtrack" in bad.output
    ci = client.post("/api/v1/cis", headers=admin, json={"name": "s", "ci_class": "server"}).json
    assert ci["custom_fields"] == {"rack_unit": 1}
    refused = runner.invoke(args=["custom-fields", "delete", "rack_unit"])
    assert refused.exit_code == 1 and "1 CIs" in refused.output
    gone = runner.invoke(args=["custom-fields", "delete", "rack_unit", "--force"])
    assert gone.exit_code == 0 and "rack_unit" not in runner.invoke(args=["custom-fields", "list"]).output
    assert values_of(db, ci["id"]) == {}
