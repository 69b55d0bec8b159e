def test_location_hierarchy(client, admin):
    site = client.post("/api/v1/locations", headers=admin, json={"name": "HQ", "kind": "site"})
    assert site.status_code == 201
    building = client.post(
        "/api/v1/locations", headers=admin, json={"name": "A", "kind": "building", "parent_id": site.json["id"]}
    ).json
    floor = client.post(
        "/api/v1/locations", headers=admin, json={"name": "1", "kind": "floor", "parent_id": building["id"]}
    ).json
    room = client.post(
        "/api/v1/locations", headers=admin, json={"name": "101", "kind": "room", "parent_id": floor["id"]}
    )
    assert room.status_code == 201 and room.json["path"] == "HQ > A > 1 > 101"


def test_location_rules(client, admin, make):
    site = make.location(kind="site")
    # a room straight under a site, a building without a parent, a parent that does not exist
    for body in (
        {"name": "r", "kind": "room", "parent_id": site.id},
        {"name": "b", "kind": "building"},
        {"name": "b", "kind": "building", "parent_id": 999999},
        {"name": "b", "kind": "galaxy"},
    ):
        response = client.post("/api/v1/locations", headers=admin, json=body)
        assert response.status_code == 422, body
    client.post("/api/v1/locations", headers=admin, json={"name": "Twin", "kind": "site"})
    assert client.post("/api/v1/locations", headers=admin, json={"name": "Twin", "kind": "site"}).status_code == 409


def test_location_filters_and_patch(client, admin, make):
    site = make.location(name="Berlin", kind="site")
    make.location(name="Tower", kind="building", parent=site)
    assert [loc["name"] for loc in client.get("/api/v1/locations?kind=building", headers=admin).json] == ["Tower"]
    assert [loc["name"] for loc in client.get("/api/v1/locations?q=berl", headers=admin).json] == ["Berlin"]
    renamed = client.patch(f"/api/v1/locations/{site.id}", headers=admin, json={"name": "Berlin-Mitte"})
    assert renamed.status_code == 200 and renamed.json["name"] == "Berlin-Mitte"
    assert client.get("/api/v1/locations/99999", headers=admin).status_code == 404
