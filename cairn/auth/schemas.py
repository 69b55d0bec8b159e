import marshmallow as ma

from cairn.api import Id, OneOf, QueryId, Schema, Text, When
from cairn.auth.models import AUTH_EVENT_KINDS, USER_SOURCES
from cairn.auth.roles import ALL_ROLES
from cairn.auth.scopes import SCOPES
from cairn.directory.schemas import DirectoryProfileSchema


class TeamRefSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class UserSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))
    name = Text(200)
    role = OneOf(ALL_ROLES, required=True)
    active = ma.fields.Boolean()
    password = ma.fields.String(load_only=True, validate=ma.validate.Length(min=12, max=200))
    teams = ma.fields.List(ma.fields.Nested(TeamRefSchema), dump_only=True)
    source = ma.fields.String(
        dump_only=True, metadata={"description": "where the account comes from: local, ldap or oidc"}
    )
    external_id = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "the directory's stable id of the account"}
    )
    directory = ma.fields.Nested(
        DirectoryProfileSchema,
        attribute="directory_profile",
        dump_only=True,
        allow_none=True,
        metadata={"description": "what the directory says of a directory user (null for others)"},
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class MeSchema(UserSchema):
    token_scopes = ma.fields.List(
        ma.fields.String(), dump_only=True, allow_none=True, metadata={"description": "the calling token's; null: all"}
    )
    token_allowed_networks = ma.fields.List(ma.fields.String(), dump_only=True, allow_none=True)
    two_factor = ma.fields.Boolean(dump_only=True, metadata={"description": "two-factor web sign-in is on"})


class UserUpdateSchema(Schema):
    name = Text(200)
    role = OneOf(ALL_ROLES)
    active = ma.fields.Boolean()
    password = ma.fields.String(load_only=True, validate=ma.validate.Length(min=12, max=200))


class UserQuerySchema(Schema):
    role = OneOf(ALL_ROLES)
    source = OneOf(USER_SOURCES, metadata={"description": "where the account comes from"})
    q = Text(200, metadata={"description": "in name and e-mail, any case"})


class TeamQuerySchema(Schema):
    q = Text(200, metadata={"description": "in name and e-mail, any case"})


class UserRefSchema(Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    name = ma.fields.String()


class TeamSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=254))
    description = Text(2000)
    member_ids = ma.fields.List(Id(), load_only=True, validate=ma.validate.Length(max=1000))
    members = ma.fields.List(ma.fields.Nested(UserRefSchema), dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class TeamUpdateSchema(Schema):
    name = Text(200, min_length=1)
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=254))
    description = Text(2000)
    member_ids = ma.fields.List(Id(), validate=ma.validate.Length(max=1000))


def _network(value: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ma.ValidationError("Not a network: give an address or CIDR such as 10.0.0.0/8.") from None


class TokenSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200)
    scopes = ma.fields.List(
        OneOf(SCOPES),
        allow_none=True,
        validate=ma.validate.Length(min=1, max=len(SCOPES)),
        metadata={"description": "null: whatever the user's role allows; else only these"},
    )
    allowed_networks = ma.fields.List(
        Text(49, validate=_network),
        allow_none=True,
        validate=ma.validate.Length(min=1, max=20),
        metadata={"description": "null: from anywhere; else only from these networks (CIDR)"},
    )
    prefix = ma.fields.String(dump_only=True)
    user_id = ma.fields.Integer(dump_only=True)
    expires_at = When(allow_none=True)
    revoked_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    last_used_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)


class NewTokenSchema(TokenSchema):
    token = ma.fields.String(dump_only=True, metadata={"description": "The secret, shown only now."})


class AuthEventQuerySchema(Schema):
    kind = OneOf(AUTH_EVENT_KINDS)
    user_id = QueryId()
    ip = Text(45)
    since = When(metadata={"description": "at or after"})
    until = When(metadata={"description": "before"})


class AuthEventSchema(Schema):
    id = ma.fields.Integer()
    at = ma.fields.DateTime()
    kind = ma.fields.String()
    user_id = ma.fields.Integer(allow_none=True)
    email = ma.fields.String()
    reason = ma.fields.String()
    ip = ma.fields.String()
    user_agent = ma.fields.String()
    token_prefix = ma.fields.String()
