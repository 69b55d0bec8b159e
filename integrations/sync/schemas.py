import marshmallow as ma

from cairn.api import Id, OneOf, Schema, Text
from cmdb.classes import ClassName
from cmdb.schemas import CIUpsertSchema, ExternalIdSchema


class RawItemSchema(ma.Schema):
    """Any JSON object: each item of a bulk body is validated on its own, so one bad item fails alone."""

    class Meta:
        unknown = ma.INCLUDE

    @ma.pre_load(pass_collection=True)
    def _wrap_non_objects(self, data, **kwargs):
        # A non-object item fails alone too: it reaches the per-item validation wrapped.
        if isinstance(data, list):
            return [item if isinstance(item, dict) else {NOT_AN_OBJECT: item} for item in data]
        return data

    def load(self, data, *, many=None, partial=None, unknown=None):
        """A bulk body (a list, loaded whole): what marshmallow's load answers, a shallow copy of each
        object (every member kept), without walking a thousand items through its machinery."""
        if (self.many if many is None else many) and isinstance(data, list) and partial is None and unknown is None:
            return [dict(item) for item in self._wrap_non_objects(data)]
        return super().load(data, many=many, partial=partial, unknown=unknown)


NOT_AN_OBJECT = "__not_an_object__"


class CIBulkItemSchema(CIUpsertSchema):
    """A CI body (as for PUT /cis/external/...) and the external id to upsert it by."""

    external_id = ma.fields.Nested(ExternalIdSchema, required=True)


class CIImportRowSchema(CIUpsertSchema):
    """A CSV row: the external id is optional (without one the row creates a CI)."""

    external_id = ma.fields.Nested(ExternalIdSchema)


class RelationshipBulkItemSchema(Schema):
    source_id = Id()
    source = ma.fields.Nested(ExternalIdSchema)
    type = Text(40, min_length=1, required=True)
    target_id = Id()
    target = ma.fields.Nested(ExternalIdSchema)
    note = Text(1000)


class BulkQuerySchema(Schema):
    dry_run = ma.fields.Boolean(load_default=False, metadata={"description": "say what would happen, write nothing"})


class BulkResultSchema(Schema):
    index = ma.fields.Integer()
    status = OneOf(("created", "updated", "unchanged", "error"))
    id = ma.fields.Integer(allow_none=True)
    errors = ma.fields.Dict(allow_none=True)

    def dump(self, obj, *, many: bool | None = None):
        """The results of a bulk write (``ItemResult.as_dict()``) as marshmallow dumps them, written
        out directly: a thousand results a request went through some 4,000 field objects."""
        plain = (self.many if many is None else many) and self.only is None and not self.exclude
        if plain and all(type(r) is dict and r.keys() == _RESULT_KEYS for r in obj):
            return [
                {
                    "index": int(r["index"]),
                    "status": str(r["status"]),
                    "id": None if r["id"] is None else int(r["id"]),
                    "errors": None if r["errors"] is None else dict(r["errors"]),
                }
                for r in obj
            ]
        return super().dump(obj, many=many)


_RESULT_KEYS = frozenset(("index", "status", "id", "errors"))


# ---------------------------------------------------------------------------------------------
# Discovery

MAC_TEXT = Text(64)


class SoftwareSchema(Schema):
    name = Text(200, min_length=1, required=True)
    version = Text(100, load_default="")
    publisher = Text(200, load_default="")


class InstalledSoftwareSchema(Schema):
    name = Text(200, min_length=1, required=True)
    version = Text(100, load_default="")
    publisher = Text(200, load_default="")
    install_date = Text(10, load_default="")


class TargetRefSchema(Schema):
    serial_number = Text(200, min_length=1)
    vendor = Text(200)
    mac_address = MAC_TEXT
    fqdn = Text(253, min_length=1)
    hostname = Text(253, min_length=1)


class DiscoveredRelationshipSchema(Schema):
    type = Text(40, min_length=1, required=True)
    target = ma.fields.Nested(TargetRefSchema, required=True)


class DiscoveredItemSchema(Schema):
    ci_class = ClassName(required=True)
    name = Text(200, min_length=1)
    hostname = Text(253, min_length=1)
    fqdn = Text(253, min_length=1)
    serial_number = Text(200, min_length=1)
    vendor = Text(200)
    model = Text(200)
    mac_addresses = ma.fields.List(MAC_TEXT, validate=ma.validate.Length(max=64))
    ip_addresses = ma.fields.List(Text(64), validate=ma.validate.Length(max=256))
    attributes = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(max=64)))
    software = ma.fields.List(ma.fields.Nested(SoftwareSchema), validate=ma.validate.Length(max=2000))
    # An inventory agent's view: every product installed (a software CI by name and publisher; the
    # version and install date on the installed_on relationship). Installations this source recorded
    # on the device earlier and no longer lists are closed.
    installed_software = ma.fields.List(
        ma.fields.Nested(InstalledSoftwareSchema), validate=ma.validate.Length(max=20_000)
    )
    # An agent's own id for the device: matched after serial and MAC (integrations/agents).
    device_id = Text(200, min_length=1)
    relationships = ma.fields.List(ma.fields.Nested(DiscoveredRelationshipSchema), validate=ma.validate.Length(max=200))


SOURCE = ma.validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$", error="Use letters, digits and . _ : - (at most 100)."
)


class DiscoveryRunWriteSchema(Schema):
    source = ma.fields.String(required=True, validate=SOURCE)
    items = ma.fields.List(
        ma.fields.Raw(metadata={"not": {"type": "null"}, "description": "a discovered item; a bad one fails alone"}),
        required=True,
        validate=ma.validate.Length(min=1, max=50_000),
    )


class SyncJobSchema(Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    source = ma.fields.String()
    status = ma.fields.String()
    dry_run = ma.fields.Boolean()
    counts = ma.fields.Dict()
    results = ma.fields.List(ma.fields.Dict(), metadata={"description": "the items that were not plain successes"})
    error = ma.fields.String()
    created_at = ma.fields.DateTime()
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)


class ImportQuerySchema(Schema):
    source = ma.fields.String(validate=SOURCE, metadata={"description": "the source the external_id column names"})
    dry_run = ma.fields.Boolean(load_default=False)


class StaleQuerySchema(Schema):
    days = ma.fields.Integer(load_default=30, validate=ma.validate.Range(min=1, max=3650))
