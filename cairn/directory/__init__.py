"""Directory accounts (LDAP / Active Directory): sign-in by bind, group mappings, sync.

``client`` speaks LDAP (ldap3) and knows nothing of Cairn's tables; ``services`` turns what it
reads into users, roles and team memberships (through cairn.auth.services); ``routes`` serves the
group mappings to admins; ``tasks`` is the periodic sync; ``cli`` is `cairn directory`.
"""
