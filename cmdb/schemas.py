import marshmallow as ma
from webargs.fields import DelimitedList

from cairn.api import BulkEditSchema, Id, Money, OneOf, QueryId, Schema, Text
from cairn.auth.schemas import UserRefSchema
from cmdb.classes import CATEGORIES, REGISTRY, ClassName
from cmdb.custom_fields.query import CustomFieldQuery, SortKeys
from cmdb.custom_fields.schemas import CUSTOM_FIELDS_HELP, ClassFieldSchema, CustomFieldValues
from cmdb.lifecycle import CRITICALITIES, LIFECYCLES, STATUSES
from cmdb.models import LOCATION_KINDS

CURRENCY = ma.validate.Regexp(r"^[A-Z]{3}$", error="Use a three-letter ISO 4217 code (EUR, USD).")


class RefSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


SOURCE = ma.validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$", error="Use letters, digits and . _ : - (at most 100)."
)


class ExternalIdSchema(Schema):
    source = ma.fields.String(required=True, validate=SOURCE)
    id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=255), attribute="external_id")


class CIWriteSchema(Schema):
    """The fields a client sends to create a CI (all but name and ci_class optional)."""

    name = Text(200, min_length=1, required=True)
    ci_class = ClassName(required=True)
    status = OneOf(STATUSES)
    criticality = OneOf(CRITICALITIES)
    asset_tag = Text(100, min_length=1, allow_none=True)
    serial_number = Text(200, min_length=1, allow_none=True)
    vendor = Text(200, allow_none=True)
    model = Text(200, allow_none=True)
    description = Text(4000)
    owner_team_id = Id(allow_none=True)
    assigned_to_id = Id(allow_none=True)
    location_id = Id(allow_none=True)
    purchase_date = ma.fields.Date(allow_none=True)
    purchase_cost = Money(allow_none=True)
    currency = ma.fields.String(allow_none=True, validate=CURRENCY)
    warranty_expires = ma.fields.Date(allow_none=True)
    attributes = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(max=64)))
    custom_fields = CustomFieldValues()
    external_ids = ma.fields.List(ma.fields.Nested(ExternalIdSchema), validate=ma.validate.Length(max=50))


class CIUpdateSchema(CIWriteSchema):
    """PATCH: every field optional; attributes merge (a null value removes the key)."""

    name = Text(200, min_length=1)
    ci_class = ClassName()


class CISchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    ci_class = ma.fields.String()
    category = ma.fields.Method("_category")
    status = ma.fields.String()
    criticality = ma.fields.String()
    asset_tag = ma.fields.String(allow_none=True)
    serial_number = ma.fields.String(allow_none=True)
    vendor = ma.fields.Method("_vendor")
    model = ma.fields.String(allow_none=True)
    description = ma.fields.String()
    owner_team_id = ma.fields.Integer(allow_none=True)
    owner_team = ma.fields.Nested(RefSchema, allow_none=True)
    assigned_to_id = ma.fields.Integer(allow_none=True)
    assigned_to = ma.fields.Nested(UserRefSchema, allow_none=True)
    location_id = ma.fields.Integer(allow_none=True)
    location = ma.fields.Nested(RefSchema, allow_none=True)
    purchase_date = ma.fields.Date(allow_none=True)
    purchase_cost = Money(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    warranty_expires = ma.fields.Date(allow_none=True)
    attributes = ma.fields.Dict()
    custom_fields = ma.fields.Dict(metadata={"description": CUSTOM_FIELDS_HELP})
    external_ids = ma.fields.List(ma.fields.Nested(ExternalIdSchema))
    allowed_statuses = ma.fields.Method("_allowed")
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _category(self, ci):
        cls = REGISTRY.held(ci.ci_class)
        return cls.category if cls else None

    def _vendor(self, ci):
        return ci.vendor or None

    def _allowed(self, ci):
        from cmdb.lifecycle import allowed_moves

        return list(allowed_moves(ci.status))

    def dump(self, obj, *, many: bool | None = None):
        """The same output as marshmallow's dump (tests/cmdb/test_ci_dump.py compares them), written
        out by hand: a CI answer is the hottest serialisation of the API (a page of 50 went through
        some 1,300 field objects). Restricted dumps (only/exclude) go through marshmallow."""
        if self.only is not None or self.exclude:
            return super().dump(obj, many=many)
        if self.many if many is None else many:
            return [self._fast(ci) for ci in obj]
        return self._fast(obj)

    def _fast(self, ci) -> dict:
        team, holder, location = ci.owner_team, ci.assigned_to, ci.location
        attributes = ci.attributes
        cost = ci.purchase_cost
        purchase_date, warranty = ci.purchase_date, ci.warranty_expires
        return {
            "id": ci.id,
            "name": ci.name,
            "ci_class": ci.ci_class,
            "category": self._category(ci),
            "status": ci.status,
            "criticality": ci.criticality,
            "asset_tag": ci.asset_tag,
            "serial_number": ci.serial_number,
            "vendor": ci.vendor or None,
            "model": ci.model,
            "description": ci.description,
            "owner_team_id": ci.owner_team_id,
            "owner_team": None if team is None else {"id": team.id, "name": team.name},
            "assigned_to_id": ci.assigned_to_id,
            "assigned_to": None if holder is None else {"id": holder.id, "email": holder.email, "name": holder.name},
            "location_id": ci.location_id,
            "location": None if location is None else {"id": location.id, "name": location.name},
            "purchase_date": None if purchase_date is None else purchase_date.isoformat(),
            "purchase_cost": None if cost is None else self._money(cost),
            "currency": ci.currency,
            "warranty_expires": None if warranty is None else warranty.isoformat(),
            "attributes": None if attributes is None else dict(attributes),
            "custom_fields": dict(ci.custom_fields or {}),
            "external_ids": [{"source": e.source, "id": e.external_id} for e in ci.external_ids],
            "allowed_statuses": self._allowed(ci),
            "created_at": None if ci.created_at is None else ci.created_at.isoformat(),
            "updated_at": None if ci.updated_at is None else ci.updated_at.isoformat(),
        }

    def _money(self, value):
        return self.fields["purchase_cost"]._serialize(value, "purchase_cost", None)


SORTABLE = ("name", "ci_class", "status", "criticality", "asset_tag", "created_at", "updated_at", "id")


class CIUpsertSchema(CIWriteSchema):
    """PUT by external id: name and ci_class are needed only when the CI does not exist yet."""

    name = Text(200, min_length=1)
    ci_class = ClassName()


class CIQuerySchema(CustomFieldQuery, Schema):
    """GET /cis's filters; ``cf_<name>=<value>`` filters by a custom field (CustomFieldQuery)."""

    ci_class = DelimitedList(ClassName(), validate=ma.validate.Length(max=50))
    category = OneOf(CATEGORIES)
    status = DelimitedList(OneOf(STATUSES), validate=ma.validate.Length(max=10))
    criticality = DelimitedList(OneOf(CRITICALITIES), validate=ma.validate.Length(max=4))
    owner_team_id = QueryId()
    assigned_to_id = QueryId()
    location_id = QueryId(metadata={"description": "the location or any location inside it"})
    vendor = Text(200)
    serial_number = Text(200)
    asset_tag = Text(100)
    warranty_expires_before = ma.fields.Date(metadata={"description": "warranty ends before this day"})
    warranty_expires_after = ma.fields.Date(metadata={"description": "warranty ends after this day"})
    q = Text(
        200,
        metadata={"description": "in name, asset tag, serial number, host name, and the holder's name and e-mail"},
    )
    format = OneOf(("json", "csv"), metadata={"description": "csv streams every match (no paging)"})
    sort = SortKeys(SORTABLE)


class CIClassSchema(Schema):
    name = ma.fields.String()
    label = ma.fields.String()
    category = ma.fields.String()
    attributes = ma.fields.Dict(metadata={"description": "JSON Schema of the class's attributes"})
    builtin = ma.fields.Boolean(metadata={"description": "false: a custom class, added at run time"})
    parent = ma.fields.String(allow_none=True, metadata={"description": "the class it inherits attributes from"})
    icon = ma.fields.String()
    relationship_types = ma.fields.List(
        ma.fields.String(),
        allow_none=True,
        metadata={"description": "the relationship types it may take part in; null: its parent's rules"},
    )
    lifecycle = ma.fields.String()
    custom_fields = ma.fields.List(
        ma.fields.Nested(ClassFieldSchema),
        metadata={"description": "its custom fields (its own and inherited), beside the built-in attributes"},
    )


CLASS_NAME = ma.validate.Regexp(
    r"^[a-z][a-z0-9_]{1,39}$", error="2 to 40 lower-case letters, digits or _, starting with a letter."
)


class CIClassUpdateSchema(Schema):
    """PATCH of a custom class: the fields sent change."""

    label = Text(100, min_length=1)
    parent = Text(40, min_length=1, metadata={"description": "a class; not this one nor one of its subclasses"})
    category = OneOf(CATEGORIES)
    icon = Text(40, metadata={"description": "an icon name: lower-case letters, digits and -"})
    relationship_types = ma.fields.List(
        Text(40, min_length=1),
        allow_none=True,
        validate=ma.validate.Length(max=100),
        metadata={"description": "names from GET /relationship-types; null: its parent's rules"},
    )
    lifecycle = OneOf(LIFECYCLES)


class CIClassWriteSchema(CIClassUpdateSchema):
    """A new custom class; category, icon and relationship types default to the parent's."""

    name = Text(40, required=True, validate=CLASS_NAME)
    label = Text(100, min_length=1, required=True)
    parent = Text(40, min_length=1, required=True, metadata={"description": "the class it inherits attributes from"})


class AssignmentSchema(Schema):
    id = ma.fields.Integer()
    ci_id = ma.fields.Integer()
    user_id = ma.fields.Integer()
    user = ma.fields.Nested(UserRefSchema)
    assigned_from = ma.fields.DateTime()
    assigned_until = ma.fields.DateTime(allow_none=True)
    note = ma.fields.String()


class HistoryEntrySchema(Schema):
    id = ma.fields.Integer()
    at = ma.fields.DateTime()
    actor = ma.fields.String()
    kind = ma.fields.Method("_kind")
    object_type = ma.fields.String()
    object_id = ma.fields.Integer()
    action = ma.fields.String()
    summary = ma.fields.String()
    changes = ma.fields.Dict()
    request_id = ma.fields.String(allow_none=True)

    def _kind(self, entry):
        if entry.object_type == "relationship":
            return "relationship"
        if entry.object_type.startswith("ticket"):
            return "ticket"
        return "change"


class LocationSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    kind = OneOf(LOCATION_KINDS, required=True)
    parent_id = Id(allow_none=True)
    address = Text(500)
    description = Text(2000)
    path = ma.fields.String(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class LocationUpdateSchema(Schema):
    name = Text(200, min_length=1)
    parent_id = Id(allow_none=True)
    address = Text(500)
    description = Text(2000)


class LocationQuerySchema(Schema):
    kind = OneOf(LOCATION_KINDS)
    parent_id = QueryId()
    q = Text(200)


class CIBulkEditSchema(BulkEditSchema):
    set_ = ma.fields.Nested(
        CIUpdateSchema, required=True, data_key="set", metadata={"description": "as PATCH /cis/{id}"}
    )
