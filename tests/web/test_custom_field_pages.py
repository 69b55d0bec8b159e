"""Custom fields in the web desk with Flask's test client: the admin pages (list, create, edit,
delete asking again when values would go), and the CI and ticket pages showing and saving values
grouped; refusals change nothing, only admins define fields."""

from __future__ import annotations

from sqlalchemy import select

from cmdb.custom_fields.models import CustomField
from tests.web.pages import post, sign_in


def _text(response) -> str:
    return response.get_data(as_text=True)


def _field(db, name):
    db.session.expire_all()
    return db.session.scalar(select(CustomField).where(CustomField.name == name))


def test_an_admin_defines_edits_and_deletes_a_field(client, make, db):
    admin = make.user("admin", name="Ava Admin")
    sign_in(client, admin)
    assert "No custom fields yet." in _text(client.get("/admin/custom-fields"))
    refused = post(
        client, "/admin/custom-fields", {"name": "Bad Name", "label": "X", "type": "text", "ci_classes": "server"}
    )
    assert refused.status_code == 422 and _field(db, "Bad Name") is None
    catastrophic = post(
        client,
        "/admin/custom-fields",
        {"name": "code", "label": "Code", "type": "text", "ci_classes": "server", "regex": "(a+)+"},
    )
    assert catastrophic.status_code == 422 and "backtrack" in _text(catastrophic) and _field(db, "code") is None
    made = post(
        client,
        "/admin/custom-fields",
        {"name": "tier", "label": "Tier", "type": "choice", "ci_classes": ["server", "laptop"],
         "choices": "gold\nsilver", "group": "Support", "default": "silver"},
    )  # fmt: skip
    assert made.status_code == 302, _text(made)
    field = _field(db, "tier")
    assert (
        field.choices == ["gold", "silver"] and field.default == "silver" and field.ci_classes == ["server", "laptop"]
    )
    listed = _text(client.get("/admin/custom-fields"))
    assert "Tier" in listed and "server, laptop" in listed
    saved = post(
        client,
        f"/admin/custom-fields/{field.id}",
        {
            "label": "Support tier",
            "ci_classes": "server",
            "choices": "gold\nsilver",
            "default": "silver",
            "group": "Support",
        },
    )
    assert saved.status_code == 302 and _field(db, "tier").label == "Support tier"
    server = make.ci("server", name="web-1")
    assert server.custom_fields == {"tier": "silver"}
    asked = post(client, f"/admin/custom-fields/{field.id}/delete")
    assert asked.status_code == 409 and "1 CI or ticket holds a value of tier" in _text(asked)
    assert _field(db, "tier") is not None
    gone = post(client, f"/admin/custom-fields/{field.id}/delete", {"force": "true"})
    assert gone.status_code == 302 and _field(db, "tier") is None


def test_only_admins_reach_the_pages(client, make):
    sign_in(client, make.user("agent"))
    assert client.get("/admin/custom-fields").status_code == 403
    assert post(client, "/admin/custom-fields", {"name": "x", "label": "x", "type": "text"}).status_code == 403


def test_ci_and_ticket_pages_show_and_save_values_grouped(client, make, db):
    from cmdb.custom_fields.services import create_definition
    from tickets.services import create_ticket

    create_definition({"name": "pci_scope", "label": "PCI scope", "type": "boolean", "group": "Compliance",
                       "applies_to": {"ci_classes": ["server"]}})  # fmt: skip
    create_definition({"name": "rack_unit", "label": "Rack unit", "type": "integer", "group": "Placement",
                       "validation": {"min": 1, "max": 60}, "applies_to": {"ci_classes": ["server"]}})  # fmt: skip
    create_definition({"name": "tags", "label": "Tags", "type": "multi_choice", "choices": ["pci", "sox"],
                       "applies_to": {"ci_classes": ["server"], "ticket_kinds": ["incident"]}})  # fmt: skip
    db.session.commit()
    agent = make.user("agent", name="Ada Agent")
    server = make.ci("server", name="db-1")
    sign_in(client, agent)
    page = _text(client.get(f"/cis/{server.id}"))
    assert page.index("Compliance") < page.index("Placement") and 'name="cf_rack_unit"' in page
    saved = post(client, f"/cis/{server.id}/custom-fields",
                 {"cf_pci_scope": "true", "cf_rack_unit": "12", "cf_tags__sent": "1", "cf_tags": ["sox"]})  # fmt: skip
    assert saved.status_code == 302
    db.session.expire_all()
    assert server.custom_fields == {"pci_scope": True, "rack_unit": 12, "tags": ["sox"]}
    refused = post(client, f"/cis/{server.id}/custom-fields", {"cf_rack_unit": "99"}, follow_redirects=True)
    assert "Rack unit: Must be at most 60." in _text(refused)
    db.session.expire_all()
    assert server.custom_fields["rack_unit"] == 12
    cleared = post(client, f"/cis/{server.id}/custom-fields", {"cf_rack_unit": "", "cf_tags__sent": "1"})
    assert cleared.status_code == 302
    db.session.expire_all()
    assert server.custom_fields == {"pci_scope": True}
    ticket = create_ticket({"kind": "incident", "title": "down", "custom_fields": {"tags": ["pci"]}}, agent)
    db.session.commit()
    shown = _text(client.get(f"/tickets/{ticket.id}"))
    assert 'data-field="tags"' in shown and "pci" in shown
    post(client, f"/tickets/{ticket.id}/custom-fields", {"cf_tags__sent": "1", "cf_tags": ["pci", "sox"]})
    db.session.expire_all()
    assert ticket.custom_fields == {"tags": ["pci", "sox"]}
