import pytest


@pytest.fixture
def sender(make):
    """Headers of a monitoring system's token: an integration user limited to events:write."""
    user = make.user("integration")
    return {"Authorization": f"Bearer {make.token(user, scopes=['events:write'])}"}


def build_estate(make, hosts: int, *, service: bool = True):
    """A core switch, ``hosts`` servers behind it (connected_to), a payroll application on the first
    host and a business service that uses it. Returns (switch, hosts, service)."""
    from relations.services import create_relationship

    switch = make.ci("network_switch", name="core-sw-1", attributes={"hostname": "core-sw-1"})
    servers = [make.ci("server", name=f"host-{i:03d}", attributes={"ip_addresses": [f"10.0.{i // 250}.{i % 250 + 1}"]})
               for i in range(hosts)]  # fmt: skip
    for server in servers:
        create_relationship({"source_id": server.id, "type": "connected_to", "target_id": switch.id})
    business = None
    if service:
        app_ci = make.ci("application", name="payroll")
        business = make.ci("business_service", name="Pay staff", criticality="critical")
        create_relationship({"source_id": app_ci.id, "type": "runs_on", "target_id": servers[0].id})
        create_relationship({"source_id": business.id, "type": "uses", "target_id": app_ci.id})
    make.db.session.commit()
    return switch, servers, business
