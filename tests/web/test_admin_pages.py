"""The admin pages with Flask's test client: every page and form, the refusals (and that they change
nothing), secrets shown once, bad input never a 500, and only admins inside /admin."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from cairn.auth.models import Team, User
from cairn.auth.services import verify_password
from tests.web.pages import PASSWORD, post, sign_in

ADMIN_PAGES = (
    "/admin",
    "/admin/users",
    "/admin/teams",
    "/admin/webhooks",
    "/admin/mail",
    "/admin/mail/outbound",
    "/admin/relationship-types",
    "/admin/changelog",
)
PUBLIC_HOOK = "https://93.184.216.34/hook"  # a literal public address: no DNS in the test


@pytest.fixture
def admin(make):
    return make.user("admin", name="Ava Admin")


@pytest.fixture
def as_admin(client, admin):
    sign_in(client, admin)
    return client


def _text(response) -> str:
    return response.get_data(as_text=True)


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_every_admin_page_opens_for_an_admin(as_admin, path):
    response = as_admin.get(path)
    assert response.status_code == 200, _text(response)[:500]
    assert 'aria-label="Admin sections"' in _text(response)


@pytest.mark.parametrize("role", ["agent", "change_manager", "auditor", "requester", "asset_manager"])
def test_only_admins_reach_admin_pages(client, make, role):
    sign_in(client, make.user(role))
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 403, path
    # nor its forms
    assert post(client, "/admin/users", {"email": "x@example.com", "role": "admin"}).status_code == 403
    assert make.db.session.scalar(select(User.id).where(User.email == "x@example.com")) is None


def test_the_index_links_every_section(as_admin):
    body = _text(as_admin.get("/admin"))
    for path in ADMIN_PAGES[1:]:
        assert f'href="{path}"' in body, path


# ---------------------------------------------------------------------------------------------
# Users


def test_users_are_searched_and_filtered_by_role(as_admin, make):
    make.user("auditor", email="olga.audit@example.com", name="Olga Auditson")
    make.user("agent", email="tim.tech@example.com", name="Tim Tech")
    body = _text(as_admin.get("/admin/users?q=AUDITSON"))
    assert "olga.audit@example.com" in body and "tim.tech@example.com" not in body
    body = _text(as_admin.get("/admin/users?role=agent"))
    assert "tim.tech@example.com" in body and "olga.audit@example.com" not in body
    # a role that does not exist is ignored, not a 500
    assert as_admin.get("/admin/users?role=emperor&page=-4&q=" + "x" * 5000).status_code == 200


def test_creating_a_user_with_a_generated_password_shows_it_once(as_admin, make):
    response = post(
        as_admin, "/admin/users", {"email": "New.Person@Example.com", "name": "New Person", "role": "agent"}
    )
    assert response.status_code == 201
    match = re.search(r'<code class="secret" id="new-password">([^<]+)</code>', _text(response))
    assert match, _text(response)[:2000]
    user = make.db.session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user.role == "agent" and verify_password(user, match.group(1))
    # never again
    assert match.group(1) not in _text(as_admin.get(f"/admin/users/{user.id}"))
    assert match.group(1) not in _text(as_admin.get("/admin/users"))


def test_creating_a_user_with_a_typed_password_does_not_echo_it(as_admin, make):
    response = post(
        as_admin, "/admin/users", {"email": "typed@example.com", "role": "auditor", "password": "a typed secret 123"}
    )
    assert response.status_code == 201 and "a typed secret 123" not in _text(response)
    user = make.db.session.scalar(select(User).where(User.email == "typed@example.com"))
    assert verify_password(user, "a typed secret 123")


@pytest.mark.parametrize(
    "form, status, message",
    [
        ({"email": "not-an-address", "role": "agent"}, 422, "Not a valid email address."),
        ({"email": "ok@example.com", "role": "emperor"}, 422, "Must be one of"),
        ({"email": "ok@example.com", "role": "agent", "password": "short"}, 422, "Length must be between 12 and 200."),
        ({"email": "ok@example.com", "role": "agent", "password": "ok@example.com"}, 422, "may not be your e-mail"),
        ({"email": "x" * 5000 + "@example.com", "role": "agent"}, 422, ""),
    ],
)
def test_a_refused_user_is_not_created(as_admin, make, form, status, message):
    before = _count(make.db, User)
    response = post(as_admin, "/admin/users", form)
    assert response.status_code == status and message in _text(response)
    assert _count(make.db, User) == before


def test_a_duplicate_email_is_refused(as_admin, make):
    make.user("agent", email="taken@example.com")
    response = post(as_admin, "/admin/users", {"email": "TAKEN@example.com", "role": "agent"})
    assert response.status_code == 409 and "exists already" in _text(response)


def test_role_change_deactivation_and_reactivation(as_admin, make):
    user = make.user("agent")
    assert post(as_admin, f"/admin/users/{user.id}/role", {"role": "change_manager"}).status_code == 302
    assert post(as_admin, f"/admin/users/{user.id}/active", {"active": "0"}).status_code == 302
    make.db.session.refresh(user)
    assert user.role == "change_manager" and not user.active
    assert "deactivated" in _text(as_admin.get(f"/admin/users/{user.id}"))
    assert post(as_admin, f"/admin/users/{user.id}/active", {"active": "1"}).status_code == 302
    make.db.session.refresh(user)
    assert user.active
    bad = post(as_admin, f"/admin/users/{user.id}/role", {"role": "emperor"})
    assert bad.status_code == 422
    make.db.session.refresh(user)
    assert user.role == "change_manager"


def test_a_deactivated_user_is_signed_out(app, as_admin, make):
    user = make.user("agent")
    other = app.test_client()
    sign_in(other, user)
    assert other.get("/desk").status_code == 200
    post(as_admin, f"/admin/users/{user.id}/active", {"active": "0"})
    assert other.get("/desk").status_code == 302


def test_an_admin_cannot_demote_or_deactivate_itself(as_admin, admin, make):
    make.user("admin")  # another admin exists: it is about oneself
    for path, form in (
        (f"/admin/users/{admin.id}/role", {"role": "agent"}),
        (f"/admin/users/{admin.id}/active", {"active": "0"}),
    ):
        response = post(as_admin, path, form)
        assert response.status_code == 409 and "cannot demote or deactivate itself" in _text(response)
    make.db.session.refresh(admin)
    assert admin.role == "admin" and admin.active


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(app, make):
    from cairn.auth.services import update_user
    from cairn.errors import Conflict

    only = make.user("admin")
    inactive = make.user("admin")
    inactive.active = False
    make.db.session.flush()
    for data in ({"role": "agent"}, {"active": False}):
        with pytest.raises(Conflict, match="last active admin"):
            update_user(only, data)
    # with a second active admin it is allowed
    make.user("admin")
    update_user(only, {"role": "agent"})
    assert only.role == "agent"


def test_the_api_refuses_the_last_admin_too(client, make):
    only = make.user("admin")
    headers = make.headers(user=make.user("admin"))
    # the second admin demotes the first: fine (the second remains)
    assert client.patch(f"/api/v1/users/{only.id}", json={"role": "agent"}, headers=headers).status_code == 200
    me = client.get("/api/v1/me", headers=headers).get_json()
    response = client.patch(f"/api/v1/users/{me['id']}", json={"active": False}, headers=headers)
    assert response.status_code == 409


def test_team_membership_from_the_user_page(as_admin, make):
    user = make.user("agent")
    network, desk = make.team("Network"), make.team("Service desk")
    response = post(as_admin, f"/admin/users/{user.id}/teams", {"team_id": [str(network.id), str(desk.id)]})
    assert response.status_code == 302
    make.db.session.refresh(user)
    assert {t.name for t in user.teams} == {"Network", "Service desk"}
    post(as_admin, f"/admin/users/{user.id}/teams", {"team_id": [str(desk.id)]})
    make.db.session.refresh(user)
    assert [t.name for t in user.teams] == ["Service desk"]
    bad = post(as_admin, f"/admin/users/{user.id}/teams", {"team_id": ["999999", "abc", str(network.id)]})
    assert bad.status_code == 422
    make.db.session.refresh(user)
    assert [t.name for t in user.teams] == ["Service desk"]


def test_reset_password_set_or_generated(as_admin, make):
    user = make.user("agent")
    assert (
        post(as_admin, f"/admin/users/{user.id}/password", {"how": "set", "password": "the new one 1234"}).status_code
        == 200
    )
    make.db.session.refresh(user)
    assert verify_password(user, "the new one 1234")
    response = post(as_admin, f"/admin/users/{user.id}/password", {"how": "generate", "password": "ignored"})
    match = re.search(r'id="new-password">([^<]+)<', _text(response))
    assert response.status_code == 200 and match
    make.db.session.refresh(user)
    assert verify_password(user, match.group(1)) and not verify_password(user, "the new one 1234")
    assert match.group(1) not in _text(as_admin.get(f"/admin/users/{user.id}"))
    # refusals change nothing
    for form in (
        {"how": "set", "password": ""},
        {"how": "set", "password": "short"},
        {"how": "set", "password": "y" * 10_000},
    ):
        assert post(as_admin, f"/admin/users/{user.id}/password", form).status_code == 422
    make.db.session.refresh(user)
    assert verify_password(user, match.group(1))


@pytest.mark.parametrize("path", ["/admin/users/0", "/admin/users/99999999", "/admin/users/99999999999999999999"])
def test_unknown_users_are_404(as_admin, path):
    assert as_admin.get(path).status_code == 404
    assert post(as_admin, path + "/role", {"role": "agent"}).status_code == 404


# ---------------------------------------------------------------------------------------------
# Teams


def test_create_rename_and_members_of_a_team(as_admin, make):
    ann, bob = make.user("agent", name="Ann"), make.user("agent", name="Bob")
    response = post(as_admin, "/admin/teams", {"name": "Storage", "email": "storage@example.com"})
    assert response.status_code == 302
    team = make.db.session.scalar(select(Team).where(Team.name == "Storage"))
    assert post(as_admin, f"/admin/teams/{team.id}/members", {"add": str(ann.id)}).status_code == 302
    assert post(as_admin, f"/admin/teams/{team.id}/members", {"add": str(bob.id)}).status_code == 302
    assert post(as_admin, f"/admin/teams/{team.id}/members", {"remove": str(ann.id)}).status_code == 302
    response = post(
        as_admin, f"/admin/teams/{team.id}", {"name": "Storage & backup", "email": "", "description": "SAN"}
    )
    assert response.status_code == 302
    make.db.session.refresh(team)
    assert team.name == "Storage & backup" and team.email is None and [m.id for m in team.members] == [bob.id]
    page = _text(as_admin.get(f"/admin/teams/{team.id}"))
    assert "Storage &amp; backup" in page and "Remove Bob" in page


def test_team_refusals_change_nothing(as_admin, make):
    make.team("Taken")
    team = make.team("Mine")
    before = _count(make.db, Team)
    assert post(as_admin, "/admin/teams", {"name": "Taken"}).status_code == 409
    assert post(as_admin, "/admin/teams", {"name": ""}).status_code == 422
    assert post(as_admin, "/admin/teams", {"name": "x" * 5000}).status_code == 422
    assert post(as_admin, "/admin/teams", {"name": "Bad mail", "email": "nope"}).status_code == 422
    assert _count(make.db, Team) == before
    assert post(as_admin, f"/admin/teams/{team.id}", {"name": "Taken"}).status_code == 409
    assert post(as_admin, f"/admin/teams/{team.id}/members", {"add": "99999999"}).status_code == 422
    assert post(as_admin, f"/admin/teams/{team.id}/members", {"add": "x"}).status_code == 422
    make.db.session.refresh(team)
    assert team.name == "Mine" and team.members == []
    assert as_admin.get("/admin/teams/99999999").status_code == 404


# ---------------------------------------------------------------------------------------------
# Webhooks


def test_a_webhook_is_created_with_its_secret_shown_once(as_admin, make):
    from integrations.webhooks.models import Webhook
    from integrations.webhooks.services import secret_of

    response = post(
        as_admin, "/admin/webhooks", {"name": "ITSM", "url": PUBLIC_HOOK, "events": ["ci.updated", "ticket.created"]}
    )
    assert response.status_code == 201
    match = re.search(r'id="new-secret">([^<]+)<', _text(response))
    assert match
    hook = make.db.session.scalar(select(Webhook).where(Webhook.name == "ITSM"))
    assert hook.events == ["ci.updated", "ticket.created"] and secret_of(hook) == match.group(1)
    assert match.group(1) not in _text(as_admin.get(f"/admin/webhooks/{hook.id}"))
    assert "ITSM" in _text(as_admin.get("/admin/webhooks"))


@pytest.mark.parametrize(
    "form, field",
    [
        ({"url": "http://127.0.0.1:9/hook", "events": ["ci.updated"]}, "url"),
        ({"url": "ftp://example.com/x", "events": ["ci.updated"]}, "url"),
        ({"url": PUBLIC_HOOK, "events": []}, "events"),
        ({"url": PUBLIC_HOOK, "events": ["ci.exploded"]}, "events"),
        ({"url": PUBLIC_HOOK, "events": ["ci.updated"], "secret": "short"}, "secret"),
        ({"url": "https://example.com/" + "x" * 10_000, "events": ["ci.updated"]}, "url"),
    ],
)
def test_a_refused_webhook_is_not_created(as_admin, make, form, field):
    from integrations.webhooks.models import Webhook

    response = post(as_admin, "/admin/webhooks", form)
    assert response.status_code == 422
    assert f'id="{field}-error"' in _text(response)
    assert _count(make.db, Webhook) == 0


def test_disable_enable_and_the_delivery_log(as_admin, make):
    from integrations.webhooks.models import WebhookDelivery
    from integrations.webhooks.services import create_webhook

    hook, _secret = create_webhook({"url": PUBLIC_HOOK, "events": ["ci.updated"], "name": "Log"})
    delivered = WebhookDelivery(
        webhook_id=hook.id, change_id=1, event="ci.updated", status="delivered", attempts=1, response_code=204
    )
    failed = WebhookDelivery(
        webhook_id=hook.id, change_id=2, event="ci.updated", status="failed", attempts=7, response_code=503,
        error="HTTP 503",
    )  # fmt: skip
    make.db.session.add_all([delivered, failed])
    make.db.session.flush()
    body = _text(as_admin.get(f"/admin/webhooks/{hook.id}"))
    assert "204" in body and "HTTP 503" in body and "delivery-failed" in body
    assert 'delivered <span class="count">1</span>' in body and 'failed <span class="count alert">1</span>' in body
    only_failed = _text(as_admin.get(f"/admin/webhooks/{hook.id}?status=failed"))
    assert "HTTP 503" in only_failed and ">204<" not in only_failed

    assert post(as_admin, f"/admin/webhooks/{hook.id}/active", {"active": "0"}).status_code == 302
    make.db.session.refresh(hook)
    assert not hook.active
    # a disabled webhook redelivers nothing
    refused = post(as_admin, f"/admin/webhooks/{hook.id}/deliveries/{failed.id}/redeliver")
    assert refused.status_code == 409 and "enable it first" in _text(refused)
    make.db.session.refresh(failed)
    assert failed.status == "failed"
    assert post(as_admin, f"/admin/webhooks/{hook.id}/active", {"active": "1"}).status_code == 302
    make.db.session.refresh(hook)
    assert hook.active


def test_unknown_webhooks_and_deliveries_are_404(as_admin, make):
    from integrations.webhooks.services import create_webhook

    hook, _ = create_webhook({"url": PUBLIC_HOOK, "events": ["ci.updated"]})
    assert as_admin.get(f"/admin/webhooks/{hook.id}?status=bogus&page=abc").status_code == 200
    # (an error answer rolls the test's transaction back: the webhook's own 404 comes first)
    response = post(as_admin, f"/admin/webhooks/{hook.id}/deliveries/99999/redeliver")
    assert response.status_code == 404 and f"Webhook {hook.id} has no delivery 99999." in _text(response)
    assert as_admin.get("/admin/webhooks/99999999").status_code == 404
    assert as_admin.get("/admin/webhooks/99999999999999999999999").status_code == 404


# ---------------------------------------------------------------------------------------------
# The mail intake


def _mail(db, status: str, **fields):
    from integrations.email.models import InboundEmail

    row = InboundEmail(
        mailbox="default", message_key=f"<{status}-{id(fields)}@example.com>", sha256="0" * 64,
        size=40, raw=b"From: a@example.com\r\nSubject: <b>hi</b>\r\n\r\n<script>x</script>", source="http",
        status=status, **fields,
    )  # fmt: skip
    db.session.add(row)
    db.session.flush()
    return row


def test_inbound_mail_by_status_with_the_reason(as_admin, make):
    _mail(make.db, "ignored", reason="auto-reply (Auto-Submitted: auto-replied)", subject="Out of office")
    failed = _mail(make.db, "failed", reason="ValueError: broken MIME", subject="Printer <on fire>")
    body = _text(as_admin.get("/admin/mail"))
    assert "Out of office" in body and "Printer &lt;on fire&gt;" in body and "broken MIME" in body
    assert 'ignored <span class="count">1</span>' in body and 'failed <span class="count alert">1</span>' in body
    body = _text(as_admin.get("/admin/mail?status=failed"))
    assert "broken MIME" in body and "Out of office" not in body
    assert f"/admin/mail/{failed.id}/reprocess" in body


def test_the_raw_message_downloads_as_an_attachment(as_admin, make):
    row = _mail(make.db, "processed")
    response = as_admin.get(f"/admin/mail/{row.id}/raw")
    assert response.status_code == 200 and response.mimetype == "message/rfc822"
    assert response.headers["Content-Disposition"] == f'attachment; filename="mail-{row.id}.eml"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.data.endswith(b"<script>x</script>")
    assert as_admin.get("/admin/mail/99999999/raw").status_code == 404


def test_reprocess_a_failed_message_but_not_a_processed_one(as_admin, make):
    failed = _mail(make.db, "failed", reason="boom")
    processed = _mail(make.db, "processed")
    refused = post(as_admin, f"/admin/mail/{processed.id}/reprocess")
    assert refused.status_code == 409 and "only failed or ignored mail" in _text(refused)
    make.db.session.refresh(processed)
    assert processed.status == "processed"
    assert post(as_admin, f"/admin/mail/{failed.id}/reprocess").status_code == 302
    make.db.session.refresh(failed)
    assert failed.reason != "boom"  # queued again (and, jobs running inline here, processed once more)
    assert post(as_admin, "/admin/mail/99999999/reprocess").status_code == 404


def test_outbound_notifications_are_listed(as_admin, make):
    from integrations.email.models import OutboundEmail

    row = OutboundEmail(
        event="created", recipient="ann@example.com", message_id="<n1@cairn>", subject="[INC0000001] Down",
        status="suppressed", reason="address bounced",
    )  # fmt: skip
    make.db.session.add(row)
    make.db.session.flush()
    body = _text(as_admin.get("/admin/mail/outbound?status=suppressed"))
    assert "ann@example.com" in body and "address bounced" in body
    assert "ann@example.com" not in _text(as_admin.get("/admin/mail/outbound?status=sent"))


# ---------------------------------------------------------------------------------------------
# Relationship types


def test_relationship_types_are_listed_and_one_is_added(as_admin, make):
    from relations.models import RelationshipType

    body = _text(as_admin.get("/admin/relationship-types"))
    assert "member_of" in body and "The target depends on the source" in body
    response = post(
        as_admin,
        "/admin/relationship-types",
        {"name": "backed_up_by", "label": "Backed up by", "reverse_label": "Backs up",
         "impact": "none", "source_classes": ["server", "database"], "target_classes": ["storage"]},
    )  # fmt: skip
    assert response.status_code == 302
    rtype = make.db.session.scalar(select(RelationshipType).where(RelationshipType.name == "backed_up_by"))
    assert rtype.impact == "none" and rtype.source_classes == ["server", "database"]
    assert "Backed up by" in _text(as_admin.get("/admin/relationship-types"))


@pytest.mark.parametrize(
    "form, status",
    [
        ({"name": "depends_on", "label": "A", "reverse_label": "B", "impact": "none"}, 409),
        ({"name": "Bad Name", "label": "A", "reverse_label": "B", "impact": "none"}, 422),
        ({"name": "ok_name", "label": "", "reverse_label": "B", "impact": "none"}, 422),
        ({"name": "ok_name", "label": "A", "reverse_label": "B", "impact": "sideways"}, 422),
        (
            {"name": "ok_name", "label": "A", "reverse_label": "B", "impact": "none", "source_classes": ["spaceship"]},
            422,
        ),
        ({"name": "ok_name", "label": "A" * 5000, "reverse_label": "B", "impact": "none"}, 422),
    ],
)
def test_a_refused_relationship_type_is_not_added(as_admin, make, form, status):
    from relations.models import RelationshipType

    as_admin.get("/admin/relationship-types")  # the built-in types are seeded
    before = _count(make.db, RelationshipType)
    assert post(as_admin, "/admin/relationship-types", form).status_code == status
    assert _count(make.db, RelationshipType) == before


# ---------------------------------------------------------------------------------------------
# The change log


def test_the_change_log_filters_by_type_actor_action_and_time(as_admin, admin, make):
    ci = make.ci(name="filter-me-ci")
    make.team("Logged team")
    body = _text(as_admin.get("/admin/changelog?object_type=ci"))
    assert "filter-me-ci" in body and "Logged team" not in body
    body = _text(as_admin.get("/admin/changelog?object_type=team&action=create"))
    assert "Logged team" in body and "filter-me-ci" not in body
    assert "filter-me-ci" in _text(as_admin.get(f"/admin/changelog?object_type=ci&object_id={ci.id}"))
    # the admin's own change is found by its actor
    post(as_admin, "/admin/teams", {"name": "Made by the admin"})
    body = _text(as_admin.get("/admin/changelog?actor=" + admin.email.upper()))
    assert "Made by the admin" in body and "filter-me-ci" not in body
    assert "No changes match." in _text(as_admin.get("/admin/changelog?until=2000-01-01"))
    assert "filter-me-ci" in _text(as_admin.get("/admin/changelog?since=2000-01-01"))


def test_the_change_log_pages_by_cursor(as_admin, make):
    for n in range(55):
        make.team(f"Paged team {n:02d}")
    first = _text(as_admin.get("/admin/changelog?object_type=team"))
    assert "Paged team 54" in first and "Paged team 00" not in first
    older = re.search(r'href="([^"]*before=\d+[^"]*)" rel="next"', first)
    assert older
    second = _text(as_admin.get(older.group(1).replace("&amp;", "&")))
    assert "Paged team 00" in second and "Paged team 54" not in second
    assert 'rel="next"' not in second


@pytest.mark.parametrize(
    "query",
    ["since=yesterday", "until=2026-13-45", "until=9999-12-31", "since=0001-01-01", "object_id=abc",
     "object_id=99999999999999999999999", "since=2026-02-01&until=2026-01-01"],
)  # fmt: skip
def test_bad_change_log_filters_are_422_not_500(as_admin, query):
    response = as_admin.get("/admin/changelog?" + query)
    assert response.status_code == 422 and "field-error" in _text(response)


def test_odd_change_log_input_is_harmless(as_admin):
    for query in (
        "before=abc",
        "before=-1",
        "before=99999999999999999999",
        "action=drop",
        "actor=%25_%25",
        "object_type=" + "x" * 5000,
    ):
        assert as_admin.get("/admin/changelog?" + query).status_code == 200, query


def test_pages_answer_without_a_password_of_the_admin_leaking(as_admin):
    for path in ADMIN_PAGES:
        assert PASSWORD not in _text(as_admin.get(path))
