import marshmallow as ma

from cairn.api import FullMatch, OneOf, Schema, Text
from cairn.db import MAX_ID
from cmdb.custom_fields.models import TYPES
from cmdb.custom_fields.patterns import MAX_PATTERN
from cmdb.custom_fields.registry import TICKET_KINDS
from cmdb.custom_fields.services import MAX_CHOICES, MAX_FIELDS_PER_CLASS

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,49}$"
TYPE_HELP = (
    "text, long_text, integer, decimal, date (YYYY-MM-DD), datetime (ISO 8601, stored in UTC), boolean, choice, "
    "multi_choice (a list), url, email, ip_address, and references by id: ci, user, team"
)


class AppliesToSchema(Schema):
    ci_classes = ma.fields.List(
        Text(40, min_length=1),
        validate=ma.validate.Length(max=100),
        metadata={"description": "CI classes (GET /ci-classes); the field applies to their subclasses too"},
    )
    ticket_kinds = ma.fields.List(OneOf(TICKET_KINDS), validate=ma.validate.Length(max=len(TICKET_KINDS)))
    ticket_categories = ma.fields.List(
        ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=MAX_ID)),
        validate=ma.validate.Length(max=100),
        metadata={
            "description": "ticket category ids (GET /ticket-categories); the field applies to tickets of the "
            "category and of its subcategories"
        },
    )


class ValidationSchema(Schema):
    min = ma.fields.Float(
        allow_nan=False,
        validate=ma.validate.Range(min=-1e15, max=1e15),
        metadata={"description": "integer, decimal: the smallest value; text, long_text: the fewest characters"},
    )
    max = ma.fields.Float(
        allow_nan=False,
        validate=ma.validate.Range(min=-1e15, max=1e15),
        metadata={"description": "integer, decimal: the largest value; text, long_text: the most characters"},
    )
    regex = Text(
        MAX_PATTERN,
        min_length=1,
        metadata={
            "description": "text, long_text: a pattern the whole value must match (RE2 syntax; no backreferences, "
            "lookaround or nested unbounded repeats such as (a+)+)"
        },
    )


class CustomFieldWriteSchema(Schema):
    name = Text(
        50,
        min_length=1,
        required=True,
        validate=FullMatch(NAME_PATTERN, "Use a lowercase identifier: a letter, then letters, digits or _."),
        metadata={"description": "the key in custom_fields and in cf_<name> list filters; never changes"},
    )
    label = Text(100, min_length=1, required=True)
    type = OneOf(TYPES, required=True, metadata={"description": TYPE_HELP})
    applies_to = ma.fields.Nested(
        AppliesToSchema,
        required=True,
        metadata={"description": f"at most {MAX_FIELDS_PER_CLASS} custom fields per class or ticket kind"},
    )
    required = ma.fields.Boolean(
        metadata={
            "description": "every CI or ticket it applies to has a value (the default is written to those lacking one)"
        }
    )
    default = ma.fields.Raw(allow_none=True, metadata={"description": "a value of the field's type"})
    choices = ma.fields.List(
        Text(100, min_length=1),
        validate=ma.validate.Length(max=MAX_CHOICES),
        metadata={"description": "choice and multi_choice fields (and only they)"},
    )
    validation = ma.fields.Nested(ValidationSchema)
    help_text = Text(500)
    group = Text(100, metadata={"description": "forms show the fields grouped under this heading"})


class CustomFieldUpdateSchema(Schema):
    label = Text(100, min_length=1)
    applies_to = ma.fields.Nested(AppliesToSchema)
    required = ma.fields.Boolean()
    default = ma.fields.Raw(allow_none=True)
    choices = ma.fields.List(Text(100, min_length=1), validate=ma.validate.Length(max=MAX_CHOICES))
    rename_choices = ma.fields.Dict(
        keys=Text(100, min_length=1),
        values=Text(100, min_length=1),
        validate=ma.validate.Length(max=MAX_CHOICES),
        metadata={"description": "{old: new}: renames choices and rewrites the values that hold them"},
    )
    validation = ma.fields.Nested(ValidationSchema)
    help_text = Text(500)
    group = Text(100)


class CustomFieldSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    label = ma.fields.String()
    type = ma.fields.String()
    applies_to = ma.fields.Nested(AppliesToSchema)
    required = ma.fields.Boolean()
    default = ma.fields.Raw(allow_none=True)
    choices = ma.fields.List(ma.fields.String())
    validation = ma.fields.Nested(ValidationSchema)
    help_text = ma.fields.String()
    group = ma.fields.String(attribute="group_name")
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class ClassFieldSchema(Schema):
    """A custom field as a CI class lists it (GET /ci-classes), beside the class's built-in attributes."""

    name = ma.fields.String(metadata={"description": "the key in custom_fields"})
    label = ma.fields.String()
    type = ma.fields.String()
    required = ma.fields.Boolean()
    group = ma.fields.String()
    defined_on = ma.fields.String(
        metadata={"description": "the class the field is defined on: this class or one it inherits from"}
    )


class ForceSchema(Schema):
    force = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "remove the values the change or deletion drops (else 409 saying how many)"},
    )


CUSTOM_FIELDS_HELP = (
    "custom field values by name (GET /custom-fields; the fields of one class or ticket kind as JSON Schema: "
    "GET /custom-fields/json-schema)"
)


def CustomFieldValues() -> ma.fields.Dict:
    """``custom_fields`` of a write: values by field name; a write merges them (null removes one)."""
    return ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=50)),
        validate=ma.validate.Length(max=MAX_FIELDS_PER_CLASS),
        metadata={"description": f"{CUSTOM_FIELDS_HELP}; merged into the stored ones, null removes a value"},
    )


class JSONSchemaQuerySchema(Schema):
    ci_class = Text(40, min_length=1, metadata={"description": "a CI class (with the fields it inherits)"})
    ticket_kind = OneOf(TICKET_KINDS)
    ticket_category_id = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=MAX_ID),
        metadata={"description": "a ticket category: the fields of its kind, its own and its parent's"},
    )

    @ma.validates_schema
    def _one_scope(self, data, **kwargs):
        tickets = "ticket_kind" in data or "ticket_category_id" in data
        if ("ci_class" in data) == tickets:
            raise ma.ValidationError("Give ci_class, or ticket_kind and/or ticket_category_id.", "_schema")


class CustomFieldsJSONSchema(Schema):
    """The JSON Schema of a class's or kind's ``custom_fields`` object, from the current definitions."""

    schema_ = ma.fields.String(data_key="$schema")
    title = ma.fields.String()
    type = ma.fields.String()
    properties = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Dict(), metadata={"description": "each field's JSON Schema"}
    )
    required = ma.fields.List(ma.fields.String())
    additional_properties = ma.fields.Boolean(data_key="additionalProperties")
