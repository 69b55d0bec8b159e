"""/vendors, /contracts, /licences, /cis/{id}/maintenance|costs|retirement|wipe|disposal, /audits,
/retirement-requests, /asset-classes."""

from __future__ import annotations

from flask.views import MethodView

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import current_user, requires
from cairn.auth.roles import ASSET_APPROVERS, ASSET_FIELD_WORKERS, ASSET_READERS, ASSET_WRITERS
from cairn.pagination import paginate_select
from cmdb.assets import services
from cmdb.assets.schemas import (
    AuditQuerySchema,
    AuditSchema,
    AuditWriteSchema,
    ContractQuerySchema,
    ContractSchema,
    ContractUpdateSchema,
    ContractWriteSchema,
    CostQuerySchema,
    CostSchema,
    DisposalSchema,
    DisposalWriteSchema,
    LicenceQuerySchema,
    LicenceSchema,
    LicenceUpdateSchema,
    LicenceWriteSchema,
    MaintenanceSchema,
    MaintenanceWriteSchema,
    PolicySchema,
    PolicyWriteSchema,
    RetirementDecisionSchema,
    RetirementQuerySchema,
    RetirementRequestSchema,
    RetirementRequestWriteSchema,
    VendorQuerySchema,
    VendorSchema,
    VendorUpdateSchema,
    WipeSchema,
    WipeWriteSchema,
)
from cmdb.services import get_ci

blp = Blueprint("assets", __name__, description="Asset management: vendors, contracts, licences, costs, retirement")


# --- Vendors --------------------------------------------------------------------------------------


@blp.route("/vendors")
class Vendors(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(VendorQuerySchema, location="query")
    @blp.response(200, VendorSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List vendors."""
        return paginate_select(services.search_vendors(filters), pagination_parameters)

    @requires(*ASSET_WRITERS)
    @blp.arguments(VendorSchema)
    @blp.response(201, VendorSchema)
    def post(self, data):
        """Create a vendor."""
        vendor = services.create_vendor(data)
        return with_etag(vendor)


@blp.route("/vendors/<int:vendor_id>")
class VendorById(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, VendorSchema)
    def get(self, vendor_id):
        """One vendor."""
        return with_etag(services.get_vendor(vendor_id))

    @requires(*ASSET_WRITERS)
    @blp.arguments(VendorUpdateSchema)
    @blp.response(200, VendorSchema)
    def patch(self, data, vendor_id):
        """Change a vendor."""
        vendor = services.get_vendor(vendor_id)
        check_if_match(vendor)
        services.update_vendor(vendor, data)
        return with_etag(vendor)


# --- Contracts ------------------------------------------------------------------------------------


@blp.route("/contracts")
class Contracts(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(ContractQuerySchema, location="query")
    @blp.response(200, ContractSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List contracts."""
        return paginate_select(services.search_contracts(filters), pagination_parameters)

    @requires(*ASSET_WRITERS)
    @blp.arguments(ContractWriteSchema)
    @blp.response(201, ContractSchema)
    def post(self, data):
        """Create a contract covering CIs."""
        contract = services.create_contract(data)
        return with_etag(contract)


@blp.route("/contracts/<int:contract_id>")
class ContractById(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, ContractSchema)
    def get(self, contract_id):
        """One contract."""
        return with_etag(services.get_contract(contract_id))

    @requires(*ASSET_WRITERS)
    @blp.arguments(ContractUpdateSchema)
    @blp.response(200, ContractSchema)
    def patch(self, data, contract_id):
        """Change a contract; ci_ids replaces the covered CIs."""
        contract = services.get_contract(contract_id)
        check_if_match(contract)
        services.update_contract(contract, data)
        return with_etag(contract)


# --- Licences -------------------------------------------------------------------------------------


@blp.route("/licences")
class Licences(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(LicenceQuerySchema, location="query")
    @blp.response(200, LicenceSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List licences (entitlements)."""
        return paginate_select(services.search_licences(filters), pagination_parameters)

    @requires(*ASSET_WRITERS)
    @blp.arguments(LicenceWriteSchema)
    @blp.response(201, LicenceSchema)
    def post(self, data):
        """Create a licence for a software product."""
        licence = services.create_licence(data)
        return with_etag(licence)


@blp.route("/licences/<int:licence_id>")
class LicenceById(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, LicenceSchema)
    def get(self, licence_id):
        """One licence."""
        return with_etag(services.get_licence(licence_id))

    @requires(*ASSET_WRITERS)
    @blp.arguments(LicenceUpdateSchema)
    @blp.response(200, LicenceSchema)
    def patch(self, data, licence_id):
        """Change a licence."""
        licence = services.get_licence(licence_id)
        check_if_match(licence)
        services.update_licence(licence, data)
        return with_etag(licence)


# --- Maintenance and costs ------------------------------------------------------------------------


@blp.route("/cis/<int:ci_id>/maintenance")
class CIMaintenance(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, MaintenanceSchema(many=True))
    @blp.paginate()
    def get(self, ci_id, pagination_parameters):
        """The CI's maintenance history, newest first."""
        return paginate_select(services.maintenance_of(get_ci(ci_id)), pagination_parameters)

    @requires(*ASSET_FIELD_WORKERS)
    @blp.arguments(MaintenanceWriteSchema)
    @blp.response(201, MaintenanceSchema)
    def post(self, data, ci_id):
        """Record a repair, upgrade or patch."""
        record = services.add_maintenance(get_ci(ci_id), data)
        return record


@blp.route("/cis/<int:ci_id>/costs")
class CICosts(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(CostQuerySchema, location="query")
    @blp.response(200, CostSchema)
    def get(self, query, ci_id):
        """Purchase cost, book value, depreciation, maintenance and contract cost, TCO."""
        return services.costs(get_ci(ci_id), query.get("as_of"))


# --- Retirement -----------------------------------------------------------------------------------


@blp.route("/cis/<int:ci_id>/retirement")
class CIRetirement(MethodView):
    @requires(*ASSET_FIELD_WORKERS)
    @blp.arguments(RetirementRequestWriteSchema)
    @blp.response(201, RetirementRequestSchema)
    def post(self, data, ci_id):
        """Request the retirement of a CI (an admin or asset manager decides)."""
        req = services.request_retirement(get_ci(ci_id, for_update=True), data["reason"], current_user())
        return req


@blp.route("/retirement-requests")
class RetirementRequests(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(RetirementQuerySchema, location="query")
    @blp.response(200, RetirementRequestSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List retirement requests, newest first."""
        return paginate_select(services.search_retirement_requests(filters), pagination_parameters)


@blp.route("/retirement-requests/<int:request_id>")
class RetirementRequestById(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, RetirementRequestSchema)
    def get(self, request_id):
        """One retirement request."""
        return with_etag(services.get_retirement_request(request_id))


@blp.route("/retirement-requests/<int:request_id>/decision")
class RetirementDecision(MethodView):
    @requires(*ASSET_APPROVERS)
    @blp.arguments(RetirementDecisionSchema)
    @blp.response(200, RetirementRequestSchema)
    def post(self, data, request_id):
        """Approve (the CI is retired) or reject a retirement request."""
        req = services.get_retirement_request(request_id)
        check_if_match(req)
        services.decide_retirement(req, data["decision"], data.get("comment", ""), current_user())
        return with_etag(req)


@blp.route("/cis/<int:ci_id>/wipe")
class CIWipe(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, WipeSchema(many=True))
    def get(self, ci_id):
        """The CI's data-wipe records."""
        return services.wipes_of(get_ci(ci_id))

    @requires(*ASSET_FIELD_WORKERS)
    @blp.arguments(WipeWriteSchema)
    @blp.response(201, WipeSchema)
    def post(self, data, ci_id):
        """Record the data wipe of a retired CI."""
        wipe = services.record_wipe(get_ci(ci_id, for_update=True), data)
        return wipe


@blp.route("/cis/<int:ci_id>/disposal")
class CIDisposal(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, DisposalSchema)
    def get(self, ci_id):
        """How the CI was disposed of (404 while it is not)."""
        from cairn.errors import NotFound

        record = services.disposal_of(get_ci(ci_id))
        if record is None:
            raise NotFound(f"CI {ci_id} has not been disposed of.")
        return record

    @requires(*ASSET_APPROVERS)
    @blp.arguments(DisposalWriteSchema)
    @blp.response(201, DisposalSchema)
    def post(self, data, ci_id):
        """Dispose of a retired, wiped CI (it becomes disposed, which is final)."""
        record = services.dispose(get_ci(ci_id, for_update=True), data)
        return record


# --- Physical audits ------------------------------------------------------------------------------


@blp.route("/audits")
class Audits(MethodView):
    @requires(*ASSET_READERS)
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """Physical audit records, newest first."""
        return paginate_select(services.search_audits(filters), pagination_parameters)

    @requires(*ASSET_FIELD_WORKERS)
    @blp.arguments(AuditWriteSchema)
    @blp.response(201, AuditSchema)
    def post(self, data):
        """Confirm a CI (by asset tag) was seen at a location."""
        audit = services.record_audit(data, current_user())
        return audit


# --- Class policies -------------------------------------------------------------------------------


@blp.route("/asset-classes")
class AssetClasses(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, PolicySchema(many=True))
    def get(self):
        """Depreciation and audit policy of every CI class."""
        return list(services.all_policies().values())


@blp.route("/asset-classes/<string:ci_class>")
class AssetClassById(MethodView):
    @requires(*ASSET_READERS)
    @blp.response(200, PolicySchema)
    def get(self, ci_class):
        """The policy of one CI class."""
        _known_class(ci_class)
        return services.policy_for(ci_class)

    @requires(*ASSET_APPROVERS)
    @blp.arguments(PolicyWriteSchema)
    @blp.response(200, PolicySchema)
    def put(self, data, ci_class):
        """Configure how a class depreciates and how often it is audited."""
        policy = services.set_policy(ci_class, data)
        return policy


def _known_class(ci_class: str) -> None:
    from cairn.errors import NotFound
    from cmdb.classes import REGISTRY

    if ci_class not in REGISTRY:
        raise NotFound(f"No CI class {ci_class!r}.")
