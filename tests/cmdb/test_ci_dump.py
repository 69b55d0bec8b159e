"""CISchema's hand-written dump (the hot path of every CI answer) gives marshmallow's output exactly."""

from datetime import date
from decimal import Decimal

import marshmallow as ma
import orjson
from sqlalchemy import select

from cairn.api import etag_of
from cmdb.models import CIExternalId, ConfigurationItem
from cmdb.schemas import CISchema
from cmdb.services import ci_answer, ci_list_page, get_ci, search_cis, visible_cis


def _marshmallow(schema, obj, many=False):
    return ma.Schema.dump(schema, obj, many=many)


def _same(fast, slow):
    # Byte for byte, keys in the same order, as the response body is written.
    assert orjson.dumps(fast) == orjson.dumps(slow)


def test_fast_dump_is_marshmallows_dump(db, make):
    holder = make.user("agent", name="Ann Holder")
    team = make.team("Ops")
    site = make.location("Paris")
    plain = make.ci("laptop", name="plain")
    full = make.ci(
        "server",
        name="full",
        status="deployed",
        criticality="critical",
        asset_tag="A-1",
        serial_number="SN-1",
        vendor="Dell",
        model="R650",
        description="rack 4, ünïcode",
        owner_team_id=team.id,
        assigned_to_id=holder.id,
        location_id=site.id,
        purchase_date=date(2024, 3, 1),
        purchase_cost=Decimal("12000.5"),
        currency="EUR",
        warranty_expires=date(2027, 3, 1),
        attributes={"hostname": "web-01", "ip_addresses": ["10.0.0.1"], "cpu_cores": 16},
    )
    db.session.add_all([CIExternalId(ci_id=full.id, source="servicenow", external_id="abc"),
                        CIExternalId(ci_id=full.id, source="lansweeper", external_id="9")])  # fmt: skip
    retired = make.ci("desktop", name="old", status="retired", purchase_cost=Decimal("0"))
    db.session.commit()
    db.session.expire_all()

    schema = CISchema()
    for ci_id in (plain.id, full.id, retired.id):
        ci = get_ci(ci_id)
        _same(schema.dump(ci), _marshmallow(schema, ci))
        # the read-only answer of GET /cis/{id} (one Core statement): the same output, the same ETag
        answer = ci_answer(ci_id)
        _same(schema.dump(answer), _marshmallow(schema, ci))
        assert etag_of(answer) == etag_of(ci)
    full_answer = schema.dump(get_ci(full.id))
    assert full_answer["purchase_cost"] == "12000.50" and full_answer["owner_team"] == {"id": team.id, "name": "Ops"}
    assert full_answer["external_ids"] and full_answer["vendor"] == "Dell"

    many = CISchema(many=True)
    cis = list(db.session.scalars(visible_cis(None).order_by(ConfigurationItem.id)))
    assert len(cis) >= 3
    _same(many.dump(cis), _marshmallow(many, cis, many=True))
    # a page of GET /cis: the ORM's page of the same select, for several sorts, limits and offsets
    for filters in ({}, {"sort": ["-name"]}, {"sort": ["criticality", "-updated_at"]}, {"ci_class": ["server"]}):
        stmt = search_cis(filters)
        total = len(list(db.session.scalars(stmt)))
        for page, size in ((1, 50), (2, 2), (3, 1), (2, 50)):
            orm_page = list(db.session.scalars(stmt.limit(size).offset((page - 1) * size)))
            counted, answers = ci_list_page(filters, None, page, size)
            assert counted == total
            _same(many.dump(answers), _marshmallow(many, orm_page, many=True))
    _same(schema.dump(cis, many=True), _marshmallow(schema, cis, many=True))


def test_fast_dump_over_every_ci_loaded_bare(db, make):
    """Also without the eager loads (relations loaded lazily), and restricted dumps still work."""
    make.ci("server", name="a", vendor="")
    make.ci("router", name="b", attributes={})
    schema = CISchema()
    for ci in db.session.scalars(select(ConfigurationItem)):
        _same(schema.dump(ci), _marshmallow(schema, ci))
    only = CISchema(only=("id", "name"))
    ci = db.session.scalars(select(ConfigurationItem)).first()
    assert only.dump(ci) == {"id": ci.id, "name": ci.name}


def test_api_answer_uses_the_same_shape(client, make):
    headers = make.headers("admin")
    ci = make.ci("server", name="api", purchase_cost=Decimal("3.1"), currency="USD")
    one = client.get(f"/api/v1/cis/{ci.id}", headers=headers)
    assert one.status_code == 200
    assert list(one.json) == list(CISchema().fields)
    assert one.json["purchase_cost"] == "3.10"
    listed = client.get("/api/v1/cis?ci_class=server", headers=headers)
    assert [c["id"] for c in listed.json] == [ci.id]
    assert listed.json[0] == one.json
