"""Custom fields: fields an admin adds at run time to CI classes (and their subclasses) and to ticket
kinds, with their values in a JSON column of the CIs and tickets (``custom_fields``).

It lives in cmdb, the lowest domain layer: the CI write paths (cmdb) and the ticket write paths
(tickets, which may import cmdb) both check values with ``values.checked_values``. Rooms: models
(definitions, the version row), registry (the definitions a process enforces, consistent across
processes), values (each type's JSON form and the checks), patterns (validation patterns),
services (defining, safely for stored values), schemas and routes (/custom-fields).
"""
