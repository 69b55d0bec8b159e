import marshmallow as ma

from cairn.api import Id, OneOf, Schema, Text
from cairn.auth.roles import ALL_ROLES


class MappedTeamSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class GroupMappingSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    group_dn = Text(
        500,
        min_length=3,
        required=True,
        metadata={"description": "the directory group's DN (compared without regard to case)"},
    )
    source = OneOf(
        ("ldap", "oidc"),
        load_default="ldap",
        metadata={"description": "ldap: group_dn is a directory DN; oidc: a value of the provider's groups claim"},
    )
    role = OneOf(ALL_ROLES, allow_none=True, metadata={"description": "the role its members get"})
    team_id = Id(allow_none=True, metadata={"description": "the team its members are in"})
    team = ma.fields.Nested(MappedTeamSchema, dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class DirectoryProfileSchema(Schema):
    dn = ma.fields.String()
    phone = ma.fields.String()
    department = ma.fields.String()
    manager_id = ma.fields.Integer(allow_none=True)
    synced_at = ma.fields.DateTime(allow_none=True)
