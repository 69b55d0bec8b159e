"""Marshmallow schemas of the asset-management API."""

from __future__ import annotations

import marshmallow as ma

from cairn.api import WEB_ADDRESS, DecimalString, FullMatch, Id, Money, OneOf, QueryId, Schema, Text, Total, When
from cmdb.assets.models import (
    CONTRACT_TYPES,
    DEPRECIATION_METHODS,
    DISPOSAL_METHODS,
    LICENCE_MODELS,
    MAINTENANCE_KINDS,
    RECURRING_PERIODS,
    RETIREMENT_STATES,
    WIPE_METHODS,
)
from cmdb.classes import ClassName
from cmdb.schemas import CURRENCY

MAX_CIS_PER_CONTRACT = 10_000


def Currency(**kwargs):
    return ma.fields.String(validate=CURRENCY, **kwargs)


def _dates_in_order(data, start="start_date", end="end_date"):
    if data.get(start) and data.get(end) and data[end] < data[start]:
        raise ma.ValidationError({end: [f"{end} must not be before {start}."]})


# --- Vendors --------------------------------------------------------------------------------------


class VendorSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    contact_name = Text(200)
    contact_email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=254))
    contact_phone = Text(50)
    portal_url = Text(
        2000, allow_none=True, validate=FullMatch(WEB_ADDRESS, error="Not a web address (http or https).")
    )
    notes = Text(4000)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class VendorUpdateSchema(VendorSchema):
    name = Text(200, min_length=1)


class VendorQuerySchema(Schema):
    q = Text(200)


# --- Contracts ------------------------------------------------------------------------------------


class ContractWriteSchema(Schema):
    name = Text(200)
    reference = Text(100)
    vendor_id = Id(required=True)
    type = OneOf(CONTRACT_TYPES, required=True)
    start_date = ma.fields.Date(required=True)
    end_date = ma.fields.Date(allow_none=True)
    cost = Money()
    recurring_cost = Money()
    recurring_period = OneOf(RECURRING_PERIODS, allow_none=True)
    currency = Currency(allow_none=True)
    auto_renew = ma.fields.Boolean()
    notice_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=0, max=3650))
    owner_team_id = Id(allow_none=True)
    note = Text(4000)
    ci_ids = ma.fields.List(Id(), validate=ma.validate.Length(max=MAX_CIS_PER_CONTRACT))

    @ma.validates_schema
    def _check(self, data, **kwargs):
        _dates_in_order(data)


class ContractUpdateSchema(ContractWriteSchema):
    vendor_id = Id()
    type = OneOf(CONTRACT_TYPES)
    start_date = ma.fields.Date()


class ContractSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    reference = ma.fields.String()
    vendor_id = ma.fields.Integer()
    vendor_name = ma.fields.Function(lambda c: c.vendor.name if c.vendor else None)
    type = ma.fields.String()
    start_date = ma.fields.Date()
    end_date = ma.fields.Date(allow_none=True)
    cost = Money()
    recurring_cost = Money()
    recurring_period = ma.fields.String(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    auto_renew = ma.fields.Boolean()
    notice_days = ma.fields.Integer()
    notice_deadline = ma.fields.Method("_deadline")
    owner_team_id = ma.fields.Integer(allow_none=True)
    note = ma.fields.String()
    ci_ids = ma.fields.List(ma.fields.Integer())
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _deadline(self, contract):
        from cmdb.assets.services import notice_deadline

        deadline = notice_deadline(contract)
        return deadline.isoformat() if deadline else None


class ContractQuerySchema(Schema):
    vendor_id = QueryId()
    type = OneOf(CONTRACT_TYPES)
    ci_id = QueryId()
    ends_before = ma.fields.Date()
    active_on = ma.fields.Date()


# --- Licences -------------------------------------------------------------------------------------


class LicenceWriteSchema(Schema):
    software_id = Id(required=True)
    model = OneOf(LICENCE_MODELS, required=True)
    quantity = ma.fields.Integer(strict=True, allow_none=True, validate=ma.validate.Range(min=0, max=10**9))
    start_date = ma.fields.Date(required=True)
    end_date = ma.fields.Date(allow_none=True)
    cost = Money()
    currency = Currency(allow_none=True)
    contract_id = Id(allow_none=True)
    reference = Text(100)
    note = Text(4000)

    @ma.validates_schema
    def _check(self, data, **kwargs):
        _dates_in_order(data)


class LicenceUpdateSchema(LicenceWriteSchema):
    software_id = Id()
    model = OneOf(LICENCE_MODELS)
    start_date = ma.fields.Date()


class LicenceSchema(Schema):
    id = ma.fields.Integer()
    software_id = ma.fields.Integer()
    model = ma.fields.String()
    quantity = ma.fields.Integer(allow_none=True)
    start_date = ma.fields.Date()
    end_date = ma.fields.Date(allow_none=True)
    cost = Money()
    currency = ma.fields.String(allow_none=True)
    contract_id = ma.fields.Integer(allow_none=True)
    reference = ma.fields.String()
    note = ma.fields.String()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class LicenceQuerySchema(Schema):
    software_id = QueryId()
    model = OneOf(LICENCE_MODELS)
    contract_id = QueryId()
    active_on = ma.fields.Date()


# --- Maintenance and costs ------------------------------------------------------------------------


class MaintenanceWriteSchema(Schema):
    performed_at = ma.fields.Date(required=True)
    kind = OneOf(MAINTENANCE_KINDS, required=True)
    vendor_id = Id(allow_none=True)
    cost = Money()
    currency = Currency(allow_none=True)
    ticket_id = Id(allow_none=True)
    note = Text(4000)


class MaintenanceSchema(Schema):
    id = ma.fields.Integer()
    ci_id = ma.fields.Integer()
    performed_at = ma.fields.Date()
    kind = ma.fields.String()
    vendor_id = ma.fields.Integer(allow_none=True)
    cost = Money()
    currency = ma.fields.String(allow_none=True)
    ticket_id = ma.fields.Integer(allow_none=True)
    note = ma.fields.String()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class CostQuerySchema(Schema):
    as_of = ma.fields.Date(metadata={"description": "the date to value the CI at (default today)"})


class CostSchema(Schema):
    ci_id = ma.fields.Integer()
    as_of = ma.fields.Date()
    currency = ma.fields.String(allow_none=True)
    purchase_cost = Money(allow_none=True)
    purchase_date = ma.fields.Date(allow_none=True)
    depreciation_method = ma.fields.String()
    useful_life_years = ma.fields.Integer()
    end_of_life = ma.fields.Date(allow_none=True)
    book_value = Total(allow_none=True)
    depreciation_to_date = Total(allow_none=True)
    maintenance_cost = Total()
    contract_cost = Total()
    tco = Total()


# --- Retirement -----------------------------------------------------------------------------------


class RetirementRequestWriteSchema(Schema):
    reason = Text(2000, min_length=1, required=True)


class RetirementDecisionSchema(Schema):
    decision = OneOf(("approve", "reject"), required=True)
    comment = Text(2000)


class RetirementRequestSchema(Schema):
    id = ma.fields.Integer()
    ci_id = ma.fields.Integer()
    state = ma.fields.String()
    reason = ma.fields.String()
    requested_by_id = ma.fields.Integer(allow_none=True)
    decided_by_id = ma.fields.Integer(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)
    comment = ma.fields.String()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class RetirementQuerySchema(Schema):
    state = OneOf(RETIREMENT_STATES)
    ci_id = QueryId()


class WipeWriteSchema(Schema):
    method = OneOf(WIPE_METHODS, required=True)
    performed_by = Text(200, min_length=1, required=True)
    performed_at = When()
    certificate = Text(200)
    note = Text(2000)


class WipeSchema(Schema):
    id = ma.fields.Integer()
    ci_id = ma.fields.Integer()
    method = ma.fields.String()
    performed_by = ma.fields.String()
    performed_at = ma.fields.DateTime()
    certificate = ma.fields.String()
    note = ma.fields.String()
    created_at = ma.fields.DateTime()


class DisposalWriteSchema(Schema):
    method = OneOf(DISPOSAL_METHODS, required=True)
    proceeds = Money()
    currency = Currency(allow_none=True)
    disposed_at = ma.fields.Date()
    recipient = Text(200)
    certificate = Text(200)
    note = Text(2000)


class DisposalSchema(Schema):
    id = ma.fields.Integer()
    ci_id = ma.fields.Integer()
    method = ma.fields.String()
    proceeds = Money()
    currency = ma.fields.String(allow_none=True)
    disposed_at = ma.fields.Date()
    recipient = ma.fields.String()
    certificate = ma.fields.String()
    note = ma.fields.String()
    created_at = ma.fields.DateTime()


# --- Physical audits ------------------------------------------------------------------------------


class AuditWriteSchema(Schema):
    asset_tag = Text(100, min_length=1, required=True)
    location_id = Id(required=True)
    audited_at = When()
    note = Text(2000)
    relocate = ma.fields.Boolean(
        metadata={"description": "on a mismatch, also move the CI to where it was seen (default false)"}
    )


class AuditSchema(Schema):
    id = ma.fields.Integer()
    ci_id = ma.fields.Integer()
    asset_tag = ma.fields.String()
    location_id = ma.fields.Integer()
    expected_location_id = ma.fields.Integer(allow_none=True)
    mismatch = ma.fields.Boolean()
    audited_at = ma.fields.DateTime()
    audited_by_id = ma.fields.Integer(allow_none=True)
    next_audit_due = ma.fields.Date()
    note = ma.fields.String()
    created_at = ma.fields.DateTime()


class AuditQuerySchema(Schema):
    ci_id = QueryId()
    location_id = QueryId()
    mismatch = ma.fields.Boolean()


# --- Class policies -------------------------------------------------------------------------------


def SalvagePercent(**kwargs) -> DecimalString:
    return DecimalString(
        pattern=r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$",
        description="percent of the purchase cost left at the end of the useful life, 0 to 100, at most 2 decimals",
        minimum=0,
        maximum=100,
        **kwargs,
    )


def DecliningFactor(**kwargs) -> DecimalString:
    return DecimalString(
        pattern=r"^(10(\.0{1,2})?|[1-9](\.[0-9]{1,2})?|0\.[5-9][0-9]?)$",
        description="declining-balance factor, 0.5 to 10, at most 2 decimals",
        minimum="0.5",
        maximum=10,
        **kwargs,
    )


class PolicyWriteSchema(Schema):
    depreciation_method = OneOf(DEPRECIATION_METHODS)
    useful_life_years = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=100))
    salvage_percent = SalvagePercent()
    declining_factor = DecliningFactor()
    audit_interval_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=3650))


class PolicySchema(Schema):
    ci_class = ma.fields.String()
    depreciation_method = ma.fields.String()
    useful_life_years = ma.fields.Integer()
    salvage_percent = SalvagePercent()
    declining_factor = DecliningFactor()
    audit_interval_days = ma.fields.Integer()
    configured = ma.fields.Boolean(metadata={"description": "false: the built-in default for the class"})


class PolicyPathSchema(Schema):
    ci_class = ClassName()
