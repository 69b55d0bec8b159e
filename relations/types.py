"""The built-in relationship types: which way impact flows and which CI classes may stand at each end.

The migrations seed the same rows (they must not import this module); types live in the
``relationship_type`` table, so an operator can add one without a release.

``impact`` is one of:
- ``source_depends_on_target``: the source fails when the target does (an app runs on a VM);
- ``target_depends_on_source``: the other way round (a rack contains a server);
- ``none``: a fact worth recording that carries no failure: kept, listed, exported and drawn
  like any other relationship, never followed by impact or dependency answers. A software
  product installed on a thousand laptops is not down when one laptop breaks.
"""

from __future__ import annotations

SOURCE_DEPENDS_ON_TARGET = "source_depends_on_target"
TARGET_DEPENDS_ON_SOURCE = "target_depends_on_source"
NO_IMPACT = "none"
IMPACT_DIRECTIONS = (SOURCE_DEPENDS_ON_TARGET, TARGET_DEPENDS_ON_SOURCE)
IMPACT_KINDS = (*IMPACT_DIRECTIONS, NO_IMPACT)

# member_of is the one type with redundancy semantics: a cluster is down only when fewer than its
# `min_members_up` members remain up; otherwise it is degraded.
MEMBER_OF = "member_of"

_COMPUTE = ["server", "virtual_machine", "container", "cluster"]
_DEVICES = ["server", "virtual_machine", "container", "laptop", "desktop", "mobile_phone", "tablet"]
_PHYSICAL = [
    "server", "laptop", "desktop", "printer", "storage", "network_switch", "router", "firewall",
    "access_point", "load_balancer", "mobile_phone", "tablet", "rack", "pdu", "ups",
]  # fmt: skip
_NETWORK = ["network_switch", "router", "firewall", "access_point", "load_balancer"]

BUILTIN_TYPES: list[dict] = [
    {
        "name": "depends_on",
        "label": "Depends on",
        "reverse_label": "Is needed by",
        "impact": SOURCE_DEPENDS_ON_TARGET,
        "source_classes": [],
        "target_classes": [],
    },
    {
        "name": "runs_on",
        "label": "Runs on",
        "reverse_label": "Runs",
        "impact": SOURCE_DEPENDS_ON_TARGET,
        "source_classes": ["virtual_machine", "container", "database", "application", "software", "cloud_service"],
        "target_classes": [*_COMPUTE, "cloud_account", "cloud_service"],
    },
    {
        "name": "hosted_on",
        "label": "Hosted on",
        "reverse_label": "Hosts",
        "impact": SOURCE_DEPENDS_ON_TARGET,
        "source_classes": [
            "application",
            "database",
            "cloud_service",
            "container",
            "virtual_machine",
            "software",
            "business_service",
        ],  # fmt: skip
        "target_classes": [*_COMPUTE, "storage", "cloud_account", "cloud_service", "load_balancer"],
    },
    {
        "name": "installed_on",
        "label": "Installed on",
        "reverse_label": "Has installed",
        # An installation (licence counting); an instance that really runs on a host is runs_on.
        "impact": NO_IMPACT,
        "source_classes": ["software"],
        "target_classes": _DEVICES,
    },
    {
        "name": "uses",
        "label": "Uses",
        "reverse_label": "Is used by",
        "impact": SOURCE_DEPENDS_ON_TARGET,
        "source_classes": [],
        "target_classes": [],
    },
    {
        "name": "connected_to",
        "label": "Connected to",
        "reverse_label": "Connects",
        "impact": SOURCE_DEPENDS_ON_TARGET,
        "source_classes": _PHYSICAL,
        "target_classes": _NETWORK,
    },
    {
        "name": "powered_by",
        "label": "Powered by",
        "reverse_label": "Powers",
        "impact": SOURCE_DEPENDS_ON_TARGET,
        "source_classes": _PHYSICAL,
        "target_classes": ["pdu", "ups"],
    },
    {
        "name": "contains",
        "label": "Contains",
        "reverse_label": "Is contained in",
        "impact": TARGET_DEPENDS_ON_SOURCE,
        "source_classes": ["rack", "cloud_account", "server", "cluster"],
        "target_classes": [
            "server",
            "storage",
            "network_switch",
            "router",
            "firewall",
            "load_balancer",
            "pdu",
            "ups",
            "cloud_service",
            "virtual_machine",
            "container",
        ],  # fmt: skip
    },
    {
        "name": MEMBER_OF,
        "label": "Member of",
        "reverse_label": "Has member",
        "impact": TARGET_DEPENDS_ON_SOURCE,
        "source_classes": [
            "server",
            "virtual_machine",
            "container",
            "database",
            "application",
            "storage",
            "network_switch",
            "router",
            "firewall",
            "load_balancer",
            "cluster",
        ],  # fmt: skip
        "target_classes": ["cluster"],
    },
]
