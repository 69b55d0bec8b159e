def test_me(client, admin):
    r = client.get("/api/v1/me", headers=admin)
    assert r.status_code == 200
    assert r.json["role"] == "admin"
