"""The CI list and the CI page, through Flask's test client as a signed-in browser: filters, sort and
paging in the URL, the CSV export, the class's attributes, lifecycle moves (only the legal ones, only
for CMDB writers), holders, relationships both ways, tickets, what depends on the CI, and the one
timeline merging the change log, tickets and assignments."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from cairn.audit.models import ChangeLog
from cmdb.models import CIAssignment, ConfigurationItem
from tests.web.pages import post, sign_in

CI_LINK = re.compile(r'<a href="/cis/(\d+)">([^<]*)</a>')
ENTRY = re.compile(r'<li class="entry kind-(\w+)">')
MOVE_TARGETS = re.compile(r'<input type="hidden" name="status" value="(\w+)">')
HTMX = {"HX-Request": "true"}


def _listed(html: str) -> list[str]:
    """The names of the CIs the list shows, in order."""
    body = html.split('id="ci-results"', 1)[1]
    return [name for _id, name in CI_LINK.findall(body)]


def _text(response) -> str:
    return response.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# The list


def test_filters_by_class_status_team_location_and_text_all_in_the_url(signed_in, make, db):
    team = make.team("Field services")
    site = make.location("Lyon")
    building = make.location("Lyon HQ", kind="building", parent=site)
    holder = make.user("requester", name="Grace Holder")
    make.ci("laptop", "lap-team", owner_team_id=team.id, status="deployed", assigned_to_id=holder.id)
    make.ci("laptop", "lap-stock", status="in_stock", location_id=building.id)
    make.ci("server", "srv-one", status="deployed", location_id=site.id)

    def names(query: str) -> set[str]:
        response = signed_in.get("/cis?" + query)
        assert response.status_code == 200, query
        return set(_listed(_text(response)))

    assert names("") == {"lap-team", "lap-stock", "srv-one"}
    assert names("ci_class=laptop") == {"lap-team", "lap-stock"}
    assert names("ci_class=laptop,server&status=deployed") == {"lap-team", "srv-one"}
    assert names("ci_class=laptop&ci_class=server&status=in_stock") == {"lap-stock"}
    assert names(f"owner_team_id={team.id}") == {"lap-team"}
    # a location holds what is in the locations inside it
    assert names(f"location_id={site.id}") == {"lap-stock", "srv-one"}
    assert names(f"location_id={building.id}") == {"lap-stock"}
    # text finds the holder by name, too
    assert names("q=grace") == {"lap-team"}
    assert names("q=SRV") == {"srv-one"}

    page = _text(signed_in.get(f"/cis?ci_class=laptop&owner_team_id={team.id}"))
    # the form shows the filters it came with
    assert '<option value="laptop" selected>' in page
    assert f'<option value="{team.id}" selected>' in page
    # sorting keeps the filters
    assert f'href="/cis?ci_class=laptop&amp;owner_team_id={team.id}&amp;sort=-name"' in page


def test_sort_and_paging_stay_in_the_url(signed_in, make):
    for i in range(55):
        make.ci("printer", f"prn-{i:03}")
    make.ci("laptop", "not-a-printer")

    first = _text(signed_in.get("/cis?ci_class=printer"))
    assert _listed(first)[:2] == ["prn-000", "prn-001"] and len(_listed(first)) == 50
    assert "55 CIs" in first and "Page 1 of 2" in first
    assert 'href="/cis?ci_class=printer&amp;page=2"' in first

    second = _text(signed_in.get("/cis?ci_class=printer&page=2"))
    assert _listed(second) == [f"prn-{i:03}" for i in range(50, 55)]
    assert 'href="/cis?ci_class=printer&amp;page=1"' in second

    descending = _text(signed_in.get("/cis?ci_class=printer&sort=-name"))
    assert _listed(descending)[:2] == ["prn-054", "prn-053"]
    assert 'aria-sort="descending"' in descending
    assert 'href="/cis?ci_class=printer&amp;sort=-name&amp;page=2"' in descending

    # a page past the end shows the last one
    assert _listed(_text(signed_in.get("/cis?ci_class=printer&page=99"))) == _listed(second)


def test_warranty_filters(signed_in, make):
    today = datetime.now(UTC).date()
    make.ci("laptop", "w-expired", warranty_expires=today - timedelta(days=1))
    make.ci("laptop", "w-today", warranty_expires=today)
    make.ci("laptop", "w-soon", warranty_expires=today + timedelta(days=10))
    make.ci("laptop", "w-later", warranty_expires=today + timedelta(days=100))
    make.ci("laptop", "w-none")

    def names(query: str) -> set[str]:
        return set(_listed(_text(signed_in.get("/cis?" + query))))

    assert names("warranty=expired") == {"w-expired"}
    assert names("warranty=expiring") == {"w-today", "w-soon"}  # within 90 days unless told
    assert names("warranty=expiring&within=5") == {"w-today"}
    assert names("warranty=expiring&within=120") == {"w-today", "w-soon", "w-later"}
    assert names("warranty=covered") == {"w-today", "w-soon", "w-later"}
    page = _text(signed_in.get("/cis?warranty=expired"))
    assert "warranty-expired" in page


def test_htmx_gets_the_table_alone_and_the_url_to_show(signed_in, make):
    make.ci("laptop", "lap-x")
    make.ci("server", "srv-x")
    response = signed_in.get(
        "/cis?q=&ci_class=laptop&status=&owner_team_id=&sort=", headers={**HTMX, "HX-Target": "ci-results"}
    )
    html = _text(response)
    assert response.status_code == 200
    assert "<html" not in html and 'id="ci-results"' in html
    assert _listed(html) == ["lap-x"]
    # the address bar gets the list's URL without the form's blank fields
    assert response.headers["HX-Push-Url"] == "/cis?ci_class=laptop"
    assert "HX-Request" in response.headers.get("Vary", "")
    # the sort field of the form follows (out of band)
    assert 'id="ci-sort" hx-swap-oob="true"' in html
    # a history restore wants the whole page
    restore = signed_in.get("/cis?ci_class=laptop", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in _text(restore)


# ---------------------------------------------------------------------------------------------
# The CSV export


def test_the_csv_export_follows_the_filters_with_the_session_and_escapes_formulas(client, signed_in, make):
    make.ci("laptop", '=HYPERLINK("http://evil","x")', serial_number="@SUM(A1)", attributes={"hostname": "lap1"})
    make.ci("laptop", "-2+3", vendor="+cmd")
    make.ci("server", "srv-not-exported")

    page = _text(signed_in.get("/cis?ci_class=laptop&sort=-name"))
    assert 'href="/cis/export.csv?ci_class=laptop&amp;sort=-name"' in page

    response = signed_in.get("/cis/export.csv?ci_class=laptop&sort=-name")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_text(response))))
    assert [row["ci_class"] for row in rows] == ["laptop", "laptop"]
    by_name = {row["name"]: row for row in rows}
    assert '\'=HYPERLINK("http://evil","x")' in by_name
    assert by_name['\'=HYPERLINK("http://evil","x")']["serial_number"] == "'@SUM(A1)"
    assert by_name['\'=HYPERLINK("http://evil","x")']["attributes.hostname"] == "lap1"
    assert by_name["'-2+3"]["vendor"] == "'+cmd"
    assert "attributes.rack_units" not in rows[0]  # only the exported classes' attributes

    # signed out: to sign-in; an API token does not open it
    client.post("/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)})
    signed_out = client.get("/cis/export.csv")
    assert signed_out.status_code == 302 and signed_out.headers["Location"].startswith("/login")
    with_token = client.get("/cis/export.csv", headers=make.headers("admin"))
    assert with_token.status_code == 302


def test_an_export_with_bad_filters_is_refused(signed_in, make):
    make.ci("laptop", "lap")
    response = signed_in.get("/cis/export.csv?ci_class=nonsense")
    assert response.status_code == 422
    assert "text/html" in response.content_type


# ---------------------------------------------------------------------------------------------
# The CI page


def test_the_page_shows_the_class_attributes_typed_and_the_asset_facts(signed_in, make):
    team = make.team("Desktop support")
    site = make.location("Paris")
    room = make.location("Room 12", kind="building", parent=site)
    laptop = make.ci(
        "laptop",
        "lap-attrs",
        owner_team_id=team.id,
        location_id=room.id,
        asset_tag="TAG-77",
        serial_number="SN-77",
        vendor="Lenovo",
        model="T14",
        purchase_date=datetime(2024, 3, 5).date(),
        purchase_cost="1234.50",
        currency="EUR",
        warranty_expires=datetime(2020, 1, 2).date(),
        external_ids=[{"source": "snipeit", "external_id": "A-991"}],
        attributes={
            "hostname": "lap-attrs.example.com",
            "cpu_cores": 8,
            "ram_gb": 16384,
            "encrypted": True,
            "last_seen": "2026-03-03",
            "ip_addresses": ["10.0.0.7", "10.0.0.8"],
        },
    )
    response = signed_in.get(f"/cis/{laptop.id}")
    html = _text(response)
    assert response.status_code == 200
    assert "Laptop attributes" in html
    assert "<dt>Host name</dt>" in html and "lap-attrs.example.com" in html
    assert "<dt>CPU cores</dt>" in html
    assert "16,384" in html  # a number, in the user's locale
    assert '<dd class="attr-bool">Yes</dd>' in html
    assert '<time datetime="2026-03-03">Mar 3, 2026</time>' in html
    assert "<li>10.0.0.7</li><li>10.0.0.8</li>" in html
    assert "<dt>Rack units</dt>" not in html  # a server's attribute, not a laptop's
    assert "Desktop support" in html and "Paris › Room 12" in html
    assert "TAG-77" in html and "SN-77" in html and "Lenovo" in html and "T14" in html
    assert "1,234.50 EUR" in html
    assert "Mar 5, 2024" in html and "warranty-expired" in html
    assert "snipeit" in html and "A-991" in html
    assert f'href="/tickets/new?ci_id={laptop.id}&amp;kind=incident"' in html


def test_every_attribute_class_and_status_has_a_translatable_label():
    from cmdb.classes import REGISTRY
    from cmdb.lifecycle import STATUSES
    from web.cis import ATTRIBUTE_LABELS, CLASS_LABELS, MOVE_LABELS, STATUS_LABELS

    declared = {name for c in REGISTRY.values() for name in c.attributes._declared_fields}
    assert declared <= set(ATTRIBUTE_LABELS)
    assert set(REGISTRY) <= set(CLASS_LABELS)
    assert set(STATUSES) == set(STATUS_LABELS) == set(MOVE_LABELS)


def test_only_the_legal_lifecycle_moves_are_offered(signed_in, make):
    ci = make.ci("server", "srv-moves", status="in_stock")
    html = _text(signed_in.get(f"/cis/{ci.id}"))
    assert set(MOVE_TARGETS.findall(html)) == {"deployed", "in_maintenance", "retired"}
    disposed = make.ci("server", "srv-gone", status="disposed")
    html = _text(signed_in.get(f"/cis/{disposed.id}"))
    assert MOVE_TARGETS.findall(html) == []
    assert "no move is possible" in html


def test_a_lifecycle_move_works_and_is_recorded(signed_in, make, db):
    ci = make.ci("server", "srv-deploy", status="in_stock")
    response = post(signed_in, f"/cis/{ci.id}/move", {"status": "deployed", "version": str(ci.version)})
    assert response.status_code == 302 and response.headers["Location"] == f"/cis/{ci.id}"
    db.session.expire_all()
    assert db.session.get(ConfigurationItem, ci.id).status == "deployed"
    moved = db.session.scalar(
        select(ChangeLog).where(
            ChangeLog.object_type == "ci", ChangeLog.object_id == ci.id, ChangeLog.action == "update"
        )
    )
    assert moved.changes["status"] == ["in_stock", "deployed"]
    page = _text(signed_in.get(f"/cis/{ci.id}"))
    assert "srv-deploy moved from In stock to Deployed." in page
    assert set(MOVE_TARGETS.findall(page)) == {"in_stock", "in_maintenance", "retired"}


def test_an_illegal_move_shows_the_error_and_changes_nothing(signed_in, make, db):
    ci = make.ci("server", "srv-stuck", status="in_stock")

    def log_rows() -> int:
        return db.session.scalar(
            select(func.count()).where(ChangeLog.object_type == "ci", ChangeLog.object_id == ci.id)
        )

    before = log_rows()
    response = post(signed_in, f"/cis/{ci.id}/move", {"status": "ordered"})
    html = _text(response)
    assert response.status_code == 409
    assert "A CI cannot move from in_stock to ordered" in html and 'class="flash error"' in html
    assert set(MOVE_TARGETS.findall(html)) == {"deployed", "in_maintenance", "retired"}  # the page, again

    response = post(signed_in, f"/cis/{ci.id}/move", {"status": "<b>nope</b>"})
    assert response.status_code == 422 and "<b>nope</b>" not in _text(response)

    # a form from before somebody else's change is not applied to what it did not show
    response = post(signed_in, f"/cis/{ci.id}/move", {"status": "deployed", "version": str(ci.version - 1)})
    assert response.status_code == 409 and "changed this CI since you opened it" in _text(response)

    db.session.expire_all()
    assert db.session.get(ConfigurationItem, ci.id).status == "in_stock"
    assert log_rows() == before


def test_disposing_without_a_wipe_record_is_refused_by_the_service(signed_in, make, db):
    ci = make.ci("laptop", "lap-retired", status="retired")
    response = post(signed_in, f"/cis/{ci.id}/move", {"status": "disposed"})
    assert response.status_code >= 400 and response.status_code < 500
    db.session.expire_all()
    assert db.session.get(ConfigurationItem, ci.id).status == "retired"


def test_an_auditor_sees_no_move_buttons_and_is_refused(client, make, db):
    ci = make.ci("server", "srv-audited", status="in_stock")
    sign_in(client, make.user("auditor"))
    html = _text(client.get(f"/cis/{ci.id}"))
    assert "srv-audited" in html
    assert MOVE_TARGETS.findall(html) == [] and f"/cis/{ci.id}/move" not in html
    assert "may look but not move" in html
    response = post(client, f"/cis/{ci.id}/move", {"status": "deployed"})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(ConfigurationItem, ci.id).status == "in_stock"


def test_a_requester_cannot_open_the_pages(client, make):
    requester = make.user("requester")
    ci = make.ci("laptop", "lap-own", assigned_to_id=requester.id)
    sign_in(client, requester)
    assert client.get("/cis").status_code == 403
    assert client.get(f"/cis/{ci.id}").status_code == 403
    assert client.get("/cis/export.csv").status_code == 403


def test_the_assignment_history_says_who_had_it_from_when_to_when(signed_in, make, db):
    from cmdb.services import update_ci

    first = make.user("requester", name="First Holder")
    second = make.user("requester", name="Second Holder")
    laptop = make.ci("laptop", "lap-hist", assigned_to_id=first.id)
    update_ci(laptop, {"assigned_to_id": second.id})
    db.session.commit()
    html = _text(signed_in.get(f"/cis/{laptop.id}"))
    history = html.split('id="assignments-h"', 1)[1].split("</table>", 1)[0]
    rows = history.split("<tr>")[2:]
    assert len(rows) == 2
    assert "Second Holder" in rows[0] and "holds it now" in rows[0]
    assert "First Holder" in rows[1] and "holds it now" not in rows[1] and rows[1].count("<time") == 2


def test_relationships_show_both_directions_with_links(signed_in, make, db):
    from relations.services import create_relationship

    vm = make.ci("virtual_machine", "vm-rel")
    app = make.ci("application", "app-rel")
    create_relationship({"source_id": app.id, "type": "runs_on", "target_id": vm.id})
    db.session.commit()

    vm_page = _text(signed_in.get(f"/cis/{vm.id}"))
    incoming = vm_page.split("Others → this CI", 1)[1].split("</table>", 1)[0]
    assert "<td>Runs</td>" in incoming and f'<a href="/cis/{app.id}">app-rel</a>' in incoming
    app_page = _text(signed_in.get(f"/cis/{app.id}"))
    outgoing = app_page.split("This CI → others", 1)[1].split("</table>", 1)[0]
    assert "<td>Runs on</td>" in outgoing and f'<a href="/cis/{vm.id}">vm-rel</a>' in outgoing

    # on the timeline of both ends, as its own kind
    for ci in (vm, app):
        entries = _text(signed_in.get(f"/cis/{ci.id}?kind=relationship")).split('id="timeline-entries"', 1)[1]
        assert ENTRY.findall(entries) == ["relationship"] and "app-rel runs_on vm-rel added" in entries
        changes = _text(signed_in.get(f"/cis/{ci.id}?kind=change")).split('id="timeline-entries"', 1)[1]
        assert ENTRY.findall(changes) == ["change"]


def test_what_depends_on_this_counts_down_degraded_and_business_services(signed_in, make, db):
    from relations.services import create_relationship

    host = make.ci("server", "host-dep")
    vm = make.ci("virtual_machine", "vm-dep")
    app = make.ci("application", "app-dep")
    service = make.ci("business_service", "Payroll service")
    for source, kind, target in ((vm, "runs_on", host), (app, "runs_on", vm), (service, "depends_on", app)):
        create_relationship({"source_id": source.id, "type": kind, "target_id": target.id})
    db.session.commit()

    box = _text(signed_in.get(f"/cis/{host.id}")).split('id="dependents-h"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'<span class="figure bad">3</span> down', box)
    assert re.search(r'<span class="figure">0</span> degraded', box)
    assert re.search(r'<span class="figure bad">1</span> business service\b', box)
    listed = CI_LINK.findall(box)
    assert listed[0] == (str(service.id), "Payroll service")  # business services first
    assert {name for _id, name in listed} == {"Payroll service", "vm-dep", "app-dep"}

    quiet = _text(signed_in.get(f"/cis/{service.id}")).split('id="dependents-h"', 1)[1]
    assert "Nothing depends on this CI." in quiet.split("</section>", 1)[0]


def _ticket(ci, user, title, kind="incident"):
    from tickets.services import create_ticket

    return create_ticket({"kind": kind, "title": title, "ci_ids": [ci.id]}, user)


def test_open_and_past_tickets_link_to_their_pages(signed_in, make, agent, db):
    from tickets.services import transition

    ci = make.ci("server", "srv-tickets")
    open_ticket = _ticket(ci, agent, "Fans are loud")
    done = _ticket(ci, agent, "Disk replaced", kind="request")
    transition(done, "resolved", {"note": "swapped", "resolution_code": "fixed"}, agent)
    db.session.commit()
    html = _text(signed_in.get(f"/cis/{ci.id}"))
    tickets = html.split('id="tickets-h"', 1)[1].split("</section>", 1)[0]
    open_part, past_part = tickets.split("Finished, newest first", 1)
    assert f'href="/tickets/{open_ticket.id}"' in open_part and "Fans are loud" in open_part
    assert f'href="/tickets/{done.id}"' in past_part and "Disk replaced" in past_part
    assert "Disk replaced" not in open_part


# ---------------------------------------------------------------------------------------------
# The timeline


def _at(minutes: int) -> datetime:
    return datetime(2025, 6, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def _timeline_estate(make, db, agent):
    """A CI created at minute 0, handed to a person at 10, an incident opened at 20, a work note on
    it at 25, the incident resolved at 30, and the CI moved to maintenance at 40."""
    from cmdb.services import update_ci
    from tickets.services import add_comment, transition

    holder = make.user("requester", name="Tim Holder")
    ci = make.ci("laptop", "lap-time", status="deployed")
    update_ci(ci, {"assigned_to_id": holder.id})
    ticket = _ticket(ci, agent, "Screen flickers")
    add_comment(ticket, "Checked the cable", True, agent)
    transition(ticket, "resolved", {"note": "new cable", "resolution_code": "fixed"}, agent)
    db.session.commit()
    update_ci(ci, {"status": "in_maintenance"})
    db.session.commit()
    log = ChangeLog
    own = (log.object_type == "ci") & (log.object_id == ci.id)
    db.session.execute(update(log).where(own, log.action == "create").values(at=_at(0)))
    db.session.execute(update(log).where(own, log.action == "update").values(at=_at(10)))
    moved = db.session.scalars(select(log.id).where(own, log.action == "update").order_by(log.id.desc())).first()
    db.session.execute(update(log).where(log.id == moved).values(at=_at(40)))
    db.session.execute(update(CIAssignment).where(CIAssignment.ci_id == ci.id).values(assigned_from=_at(10)))
    from tickets.models import Ticket

    db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(created_at=_at(20), resolved_at=_at(30)))
    of_ticket = (log.object_type == "ticket") & (log.object_id == ticket.id)
    db.session.execute(update(log).where(of_ticket, log.action == "comment").values(at=_at(25)))
    db.session.execute(update(log).where(of_ticket, log.action == "transition").values(at=_at(30)))
    db.session.commit()
    return ci, ticket


def test_the_timeline_merges_changes_tickets_and_assignments_newest_first(signed_in, make, db, agent):
    ci, ticket = _timeline_estate(make, db, agent)
    html = _text(signed_in.get(f"/cis/{ci.id}"))
    timeline = html.split('id="timeline-entries"', 1)[1]
    # moved (40), resolved (30), work note (25), opened (20), handed over (10) with its CI update,
    # created (0)
    assert ENTRY.findall(timeline) == ["change", "ticket", "ticket", "ticket", "assignment", "change", "change"]
    entries = timeline.split('<li class="entry')[1:]
    assert "In maintenance" in entries[0]
    resolved = entries[1]
    assert f'<a href="/tickets/{ticket.id}">{ticket.number}</a> moved' in resolved
    assert "state-resolved" in resolved and "new cable" in resolved and "fixed" in resolved
    assert "Work note" in entries[2] and "Checked the cable" in entries[2]
    assert f"{ticket.number}</a> opened: Screen flickers" in entries[3]
    assert "Handed to Tim Holder" in entries[4]
    assert "Tim Holder" in entries[5]  # the holder change names the person, not an id
    assert "created" in entries[6]


def test_the_timeline_filters_by_kind_with_and_without_htmx(signed_in, make, db, agent):
    ci, _ticket_ = _timeline_estate(make, db, agent)
    page = _text(signed_in.get(f"/cis/{ci.id}?kind=ticket"))
    assert ENTRY.findall(page.split('id="timeline-entries"', 1)[1]) == ["ticket", "ticket", "ticket"]
    assert 'id="kind-ticket" name="kind" value="ticket" checked' in page
    page = _text(signed_in.get(f"/cis/{ci.id}?kind=assignment"))
    assert ENTRY.findall(page.split('id="timeline-entries"', 1)[1]) == ["assignment"]

    fragment = signed_in.get(f"/cis/{ci.id}/timeline?kind=change", headers={**HTMX, "HX-Target": "timeline-entries"})
    html = _text(fragment)
    assert fragment.status_code == 200 and "<html" not in html
    assert ENTRY.findall(html) == ["change", "change", "change"]
    assert fragment.headers["HX-Push-Url"] == f"/cis/{ci.id}?kind=change"

    # without htmx, the fragment's address leads to the page
    plain = signed_in.get(f"/cis/{ci.id}/timeline?kind=change")
    assert plain.status_code == 302 and plain.headers["Location"] == f"/cis/{ci.id}?kind=change#timeline"


def test_a_long_timeline_comes_in_pages_without_gaps_or_repeats(signed_in, make, db):
    from cmdb.services import update_ci

    ci = make.ci("server", "srv-long")
    for i in range(40):
        update_ci(ci, {"description": f"revision {i}"})
        db.session.commit()
    first = _text(signed_in.get(f"/cis/{ci.id}"))
    assert len(ENTRY.findall(first)) == 30
    assert "revision 39" in first.split('<li class="entry', 2)[1]
    older = re.search(r'href="(/cis/\d+\?before=[^"#]+)#timeline"[^>]*rel="next"', first)
    assert older, "no link to older entries"
    second = _text(signed_in.get(older.group(1).replace("&amp;", "&")))
    assert len(ENTRY.findall(second.split('id="timeline-entries"', 1)[1])) == 11
    assert "revision 9<" in second and "revision 10<" not in second.split('id="timeline-entries"', 1)[1]
    assert 'rel="next"' not in second.split('id="timeline-entries"', 1)[1]


def test_the_timeline_pages_through_entries_that_share_a_moment(make, db, agent):
    """Every source cut at the same cursor: entries at the same instant are neither lost nor doubled."""
    from cmdb.services import get_ci, update_ci
    from integrations.timeline import ci_timeline

    people = [make.user("requester") for _ in range(4)]
    ci = make.ci("laptop", "lap-ties")
    for person in people:
        update_ci(ci, {"assigned_to_id": person.id})
        db.session.commit()
    from tickets.services import add_comment

    for i in range(3):
        add_comment(_ticket(ci, agent, f"tie {i}"), f"note {i}", i % 2 == 0, agent)
    db.session.commit()
    moment = _at(5)
    from tickets.models import Ticket, TicketCI

    db.session.execute(
        update(ChangeLog).where(ChangeLog.object_type == "ci", ChangeLog.object_id == ci.id).values(at=moment)
    )
    held = CIAssignment.ci_id == ci.id
    db.session.execute(update(CIAssignment).where(held).values(assigned_from=moment))
    db.session.execute(
        update(CIAssignment).where(held, CIAssignment.assigned_until.is_not(None)).values(assigned_until=moment)
    )
    linked = select(TicketCI.ticket_id).where(TicketCI.ci_id == ci.id)
    db.session.execute(update(Ticket).where(Ticket.id.in_(linked)).values(created_at=moment))
    db.session.execute(update(ChangeLog).where(ChangeLog.object_type == "ticket").values(at=moment))
    db.session.commit()
    ci = get_ci(ci.id)

    everything = ci_timeline(ci, agent, limit=200).entries
    # 1 create + 4 holder changes, 3 tickets opened and commented on, 4 handed over, 3 returned
    assert len(everything) == 18
    assert {e.event for e in everything if e.kind == "ticket"} == {"opened", "comment"}
    paged, cursor = [], None
    while True:
        page = ci_timeline(ci, agent, limit=4, before=cursor)
        paged.extend(page.entries)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [e.key for e in paged] == [e.key for e in everything]
    assert len({(e.kind, e.event, e.row_id) for e in paged}) == 18


# ---------------------------------------------------------------------------------------------
# Hostile input


def test_markup_in_a_ci_name_is_text(signed_in, make, agent, db):
    from tickets.services import add_comment

    ci = make.ci("laptop", "<script>alert(1)</script>", description="<img src=x onerror=alert(2)>")
    add_comment(_ticket(ci, agent, "<script>alert(3)</script>"), "<script>alert(4)</script>", False, agent)
    db.session.commit()
    for path in ("/cis", f"/cis/{ci.id}", "/cis?q=%3Cscript%3E"):
        html = _text(signed_in.get(path))
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "<script>alert" not in html and "<img src=x" not in html, path
    timeline = _text(signed_in.get(f"/cis/{ci.id}?kind=ticket"))
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in timeline and "&lt;script&gt;alert(4)&lt;/script&gt;" in timeline


def test_bad_input_never_fails_the_server(signed_in, make):
    ci = make.ci("server", "srv-bad")
    paths = [
        "/cis?ci_class=nope",
        "/cis?ci_class=" + ",".join(["laptop"] * 80),
        "/cis?status=bogus",
        "/cis?owner_team_id=abc",
        "/cis?owner_team_id=99999999999999999999999",
        "/cis?location_id=-1",
        "/cis?q=" + "x" * 20_000,
        "/cis?q=%00%ff%fe",
        "/cis?sort=password_hash",
        "/cis?sort=name,name,name,name,name,name",
        "/cis?page=-5",
        "/cis?page=abc",
        "/cis?page=99999999999999999999999999",
        "/cis?warranty=forever",
        "/cis?warranty=expiring&within=0",
        "/cis?warranty=expiring&within=9999999999999999999",
        "/cis/export.csv?sort=nope",
        "/cis/0",
        "/cis/99999999999999",
        f"/cis/{ci.id}?kind=nope",
        f"/cis/{ci.id}?before=garbage",
        f"/cis/{ci.id}?before=99999999999999999.9.99999999999999999999",
        f"/cis/{ci.id}?before=1.1.1&kind=assignment",
        f"/cis/{ci.id}?before=" + "9" * 5000,
        f"/cis/{ci.id}/timeline?kind=nope&before=x",
    ]
    for path in paths:
        response = signed_in.get(path, headers={**HTMX, "HX-Target": "ci-results"} if "q=x" in path else {})
        assert response.status_code < 500, path
    assert signed_in.get("/cis?ci_class=nope").status_code == 422
    assert "Not a timeline position" in _text(signed_in.get(f"/cis/{ci.id}?before=garbage"))
    for data in (
        {},
        {"status": ""},
        {"status": "x" * 10_000},
        {"status": "deployed", "version": "9" * 400},
        {"status": ["bogus", "deployed"]},
    ):
        response = post(signed_in, f"/cis/{ci.id}/move", data)
        assert 400 <= response.status_code < 500, data
    assert post(signed_in, "/cis/99999999999999/move", {"status": "deployed"}).status_code == 404
