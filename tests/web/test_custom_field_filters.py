"""cf_<name> filters on the web lists (test client): the CI and ticket lists take the API's
``cf_<name>`` filters and ``sort=cf_<name>``, show them as removable chips and as columns, add one
from the field picker (the fields that apply), and say what is wrong with a bad one; the ticket page
and its form show the fields of the ticket's category."""

from __future__ import annotations

import re
from html import unescape

from cmdb.custom_fields.services import create_definition
from tests.web.pages import post, sign_in


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


def _rows(html: str, table_class: str) -> list[str]:
    body = html.split(f'class="list {table_class}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row for row in re.findall(r"<tr>(.*?)</tr>", body, re.S) if "colspan" not in row]


def _fields(db):
    create_definition(
        {"name": "pci_scope", "label": "PCI scope", "type": "boolean", "applies_to": {"ci_classes": ["server"]}}
    )
    create_definition(
        {"name": "rack_unit", "label": "Rack unit", "type": "integer", "applies_to": {"ci_classes": ["server"]}}
    )
    create_definition(
        {"name": "screen_size", "label": "Screen size", "type": "decimal", "applies_to": {"ci_classes": ["laptop"]}}
    )
    db.session.commit()


def test_the_ci_list_filters_sorts_and_shows_custom_fields(client, make, db):
    _fields(db)
    make.ci("server", name="srv-in-low", custom_fields={"pci_scope": True, "rack_unit": 4})
    make.ci("server", name="srv-in-high", custom_fields={"pci_scope": True, "rack_unit": 30})
    make.ci("server", name="srv-out", custom_fields={"pci_scope": False, "rack_unit": 1})
    make.ci("laptop", name="lap-1", custom_fields={"screen_size": 14.0})
    sign_in(client, make.user("agent"))
    page = client.get("/cis?cf_pci_scope=true&sort=cf_rack_unit")
    html = _text(page)
    assert page.status_code == 200
    rows = _rows(html, "ci-list")
    assert [re.search(r">(srv-[a-z-]+)<", r).group(1) for r in rows] == ["srv-in-low", "srv-in-high"]
    assert 'data-filter="cf_pci_scope"' in html and "PCI scope: Yes" in html
    assert 'name="cf_pci_scope" value="true"' in html  # kept by the form's other filters
    assert "sorted by Rack unit ▲" in html
    assert '<td data-field="rack_unit">4</td>' in html and '<td data-field="pci_scope">Yes</td>' in html
    # Removing the chip drops that filter alone.
    remove = re.search(r'data-filter="cf_pci_scope".*?<a href="([^"]+)"', html, re.S).group(1)
    assert "cf_pci_scope" not in remove and "sort=cf_rack_unit" in remove
    assert len(_rows(_text(client.get(remove)), "ci-list")) == 4
    # The picker lists every CI field, or those of the class filtered by.
    picker = html.split('id="cf-add-field"', 1)[1].split("</select>", 1)[0]
    assert all(label in picker for label in ("PCI scope", "Rack unit", "Screen size"))
    laptops = _text(client.get("/cis?ci_class=laptop")).split('id="cf-add-field"', 1)[1].split("</select>", 1)[0]
    assert "Screen size" in laptops and "Rack unit" not in laptops
    # Adding one from the picker (no JavaScript: a GET of the form) lands on the list's own URL.
    added = client.get("/cis?cf_pci_scope=true&add_field=rack_unit&add_value=30")
    assert added.status_code == 302
    assert "cf_rack_unit=30" in added.location and "cf_pci_scope=true" in added.location
    assert "add_field" not in added.location
    rows = _rows(_text(client.get(added.location)), "ci-list")
    assert len(rows) == 1 and "srv-in-high" in rows[0]
    # htmx: the fragment redraws the chips out of band, with the new one.
    fragment = _text(
        client.get(
            "/cis?add_field=pci_scope&add_value=false", headers={"HX-Request": "true", "HX-Target": "ci-results"}
        )
    )
    assert 'id="cf-filters" class="cf-filters" hx-swap-oob="true"' in fragment and "PCI scope: No" in fragment
    # While a field is picked and no value typed yet, the chips are left alone (the picker keeps its choice).
    picking = _text(client.get("/cis?add_field=pci_scope", headers={"HX-Request": "true", "HX-Target": "ci-results"}))
    assert 'id="cf-filters"' not in picking
    # A bad value or an unknown field: said on its chip, left out of the filters.
    bad = client.get("/cis?cf_rack_unit=abc&cf_nothing=1")
    html = _text(bad)
    assert bad.status_code == 422
    assert "Not a valid number." in html and "no custom field nothing" in html
    assert len(_rows(html, "ci-list")) == 4


def test_the_ticket_list_filters_by_custom_fields(client, make, db):
    create_definition(
        {"name": "store", "label": "Store", "type": "choice", "choices": ["north", "south"],
         "applies_to": {"ticket_kinds": ["incident"]}}
    )  # fmt: skip
    create_definition(
        {"name": "approved", "label": "Approved", "type": "boolean", "applies_to": {"ticket_kinds": ["change"]}}
    )
    db.session.commit()
    agent = make.user("agent")
    from tickets.services import create_ticket

    for n, store in enumerate(("north", "south", "north")):
        create_ticket({"kind": "incident", "title": f"till {n}", "custom_fields": {"store": store}}, agent)
    db.session.commit()
    sign_in(client, agent)
    html = _text(client.get("/tickets?queue=all&cf_store=north"))
    rows = _rows(html, "tickets-table")
    assert len(rows) == 2 and all("north" in r for r in rows)
    assert 'data-filter="cf_store"' in html and "Store: north" in html
    remove = re.search(r'data-filter="cf_store".*?<a href="([^"]+)"', html, re.S).group(1)
    assert "cf_store" not in remove
    assert len(_rows(_text(client.get(remove)), "tickets-table")) == 3
    picker = html.split('id="cf-add-field"', 1)[1].split("</select>", 1)[0]
    assert "Store" in picker and "Approved" in picker
    incidents = _text(client.get("/tickets?kind=incident")).split('id="cf-add-field"', 1)[1].split("</select>", 1)[0]
    assert "Store" in incidents and "Approved" not in incidents
    added = client.get("/tickets?queue=all&add_field=store&add_value=south")
    assert added.status_code == 302 and "cf_store=south" in added.location
    assert len(_rows(_text(client.get(added.location)), "tickets-table")) == 1
    wrong = client.get("/tickets?queue=all&cf_store=east")
    assert wrong.status_code == 422 and "Must be one of: north, south." in _text(wrong)


def test_the_ticket_page_shows_and_saves_its_category_fields(app, client, make, db):
    from tickets.categories import create_category
    from tickets.services import create_ticket

    hardware = create_category({"name": "hardware", "label": "Hardware", "kind": "incident"})
    laptop = create_category({"name": "laptop", "label": "Laptop", "kind": "incident", "parent_id": hardware.id})
    create_definition(
        {"name": "bay", "label": "Bay", "type": "integer", "applies_to": {"ticket_categories": [hardware.id]}}
    )
    agent = make.user("agent")
    ticket = create_ticket({"kind": "incident", "title": "broken", "category_id": laptop.id}, agent)
    plain = create_ticket({"kind": "incident", "title": "other"}, agent)
    db.session.commit()
    sign_in(client, agent)
    assert 'name="cf_bay"' in _text(client.get(f"/tickets/{ticket.id}"))
    assert 'name="cf_bay"' not in _text(client.get(f"/tickets/{plain.id}"))
    saved = post(client, f"/tickets/{ticket.id}/custom-fields", {"cf_bay": "12", "version": str(ticket.version)})
    assert saved.status_code == 302
    db.session.expire_all()
    assert ticket.custom_fields == {"bay": 12}
    # The admin form offers the categories, and a definition made there applies to one.
    client = app.test_client()
    sign_in(client, make.user("admin"))
    form = _text(client.get("/admin/custom-fields"))
    assert "Incident: Hardware > Laptop" in form
    made = post(
        client,
        "/admin/custom-fields",
        {"name": "dock", "label": "Dock", "type": "text", "ticket_categories": str(laptop.id)},
    )
    assert made.status_code == 302, _text(made)
    assert "Incident: Hardware > Laptop" in _text(client.get("/admin/custom-fields")).split("<tbody>", 1)[1]
