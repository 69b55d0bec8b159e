"""The roles of API.md and the role sets endpoints declare."""

ADMIN = "admin"
AGENT = "agent"
CHANGE_MANAGER = "change_manager"
REQUESTER = "requester"
INTEGRATION = "integration"
AUDITOR = "auditor"

ALL_ROLES = (ADMIN, AGENT, CHANGE_MANAGER, REQUESTER, INTEGRATION, AUDITOR)

# Who may read the CMDB and the change log (requesters read only what is theirs).
STAFF_READERS = (ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION, AUDITOR)
EVERYONE = ALL_ROLES
# Who may create and change CIs, locations and relationships.
CMDB_WRITERS = (ADMIN, AGENT, INTEGRATION)
ADMINS = (ADMIN,)
