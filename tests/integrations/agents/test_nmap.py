"""nmap scans: the real nmap scans 127.0.0.1 (never another address) and the scan is imported."""

import shutil
import subprocess

import pytest

HOSTILE = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<nmaprun><host><address addr="&x;" addrtype="ipv4"/></host></nmaprun>"""


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> bytes:
    nmap = shutil.which("nmap")
    if nmap is None:
        pytest.fail("nmap is not installed: apt-get install nmap (make test does it when root)")
    path = tmp_path_factory.mktemp("nmap") / "scan.xml"
    subprocess.run([nmap, "-oX", str(path), "-sV", "--version-light", "-O", "-T4", "--top-ports", "50", "127.0.0.1"],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    return path.read_bytes()


def test_a_scan_of_localhost_lists_it_unmanaged_then_matched(client, make, admin, scan):
    response = client.post("/api/v1/discovery/nmap", headers=admin, data=scan, content_type="application/xml")
    assert response.status_code == 201, response.json
    run = response.json
    assert run["kind"] == "nmap" and run["counts"]["hosts"] == 1 and run["counts"]["unmanaged"] == 1
    host = run["results"][0]
    assert host["ip_addresses"] == ["127.0.0.1"] and host["status"] == "unmanaged"
    assert "services" in host and "os_guesses" in host

    ci = make.ci("server", attributes={"ip_addresses": ["127.0.0.1"]})
    response = client.post("/api/v1/discovery/nmap", headers=admin, data=scan, content_type="application/xml")
    assert response.json["counts"]["matched"] == 1
    assert response.json["results"][0]["ci_id"] == ci.id


def test_the_cli_imports_a_scan(app, db, tmp_path, scan):
    path = tmp_path / "scan.xml"
    path.write_bytes(scan)
    result = app.test_cli_runner().invoke(args=["discover", "nmap", str(path)])
    assert result.exit_code == 0, result.output
    assert "hosts 1" in result.output and "unmanaged: 127.0.0.1" in result.output


@pytest.mark.parametrize("body", [HOSTILE, b"<nmaprun><host>", b"<other/>"])
def test_bad_scans_are_422_and_write_nothing(client, admin, body):
    response = client.post("/api/v1/discovery/nmap", headers=admin, data=body, content_type="application/xml")
    assert response.status_code in (400, 422)
    assert response.mimetype == "application/problem+json"


def test_requesters_may_not_import(client, make, scan):
    headers = make.headers("requester")
    response = client.post("/api/v1/discovery/nmap", headers=headers, data=scan, content_type="application/xml")
    assert response.status_code == 403
