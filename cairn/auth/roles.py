"""The roles of API.md and the role sets endpoints declare."""

ADMIN = "admin"
AGENT = "agent"
CHANGE_MANAGER = "change_manager"
REQUESTER = "requester"
INTEGRATION = "integration"
AUDITOR = "auditor"
# Runs IT asset management: vendors, contracts, licences, audits, approves retirements and disposals.
ASSET_MANAGER = "asset_manager"

ALL_ROLES = (ADMIN, AGENT, CHANGE_MANAGER, REQUESTER, INTEGRATION, AUDITOR, ASSET_MANAGER)

# Who may read the CMDB and the change log (requesters read only what is theirs).
STAFF_READERS = (ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION, AUDITOR, ASSET_MANAGER)
EVERYONE = ALL_ROLES
# Who may create and change CIs, locations and relationships.
CMDB_WRITERS = (ADMIN, AGENT, INTEGRATION, ASSET_MANAGER)
ADMINS = (ADMIN,)
# Asset management (cmdb/assets, integrations/reports).
ASSET_READERS = STAFF_READERS
ASSET_WRITERS = (ADMIN, ASSET_MANAGER, INTEGRATION)
# Technicians record repairs, wipes and scans as well.
ASSET_FIELD_WORKERS = (ADMIN, ASSET_MANAGER, AGENT, INTEGRATION)
ASSET_APPROVERS = (ADMIN, ASSET_MANAGER)
