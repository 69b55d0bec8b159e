"""The real agents (Debian's fusioninventory-agent and ocsinventory-agent, `make test` installs them
when root) inventory this machine into a live test server: one run each, then a second that changes
nothing."""

import re
import shutil
import subprocess
import tempfile
import threading

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from cairn.audit.models import ChangeLog
from cmdb.models import ConfigurationItem
from integrations.agents.models import AgentDevice
from relations.models import Relationship


@pytest.fixture
def live_server(app, committed_db):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def token(committed_db):
    from integrations.agents.services import create_token

    _, secret = create_token("lab")
    committed_db.session.commit()
    return secret


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: apt-get install fusioninventory-agent ocsinventory-agent nmap")
    return path


def fusioninventory(url: str, vardir: str) -> list[str]:
    return [_need("fusioninventory-agent"), "--server", url, "--tasks=inventory", "--no-httpd", "--force",
            "--logger=stderr", "--backend-collect-timeout=60"]  # fmt: skip


def ocsinventory(url: str, vardir: str) -> list[str]:
    return [_need("ocsinventory-agent"), f"--server={url}", "--nolocal", "--force", f"--basevardir={vardir}",
            f"--logfile={vardir}/agent.log"]  # fmt: skip


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    for arg in command:  # the OCS agent logs to its file
        if arg.startswith("--logfile="):
            output += _read(arg.split("=", 1)[1])
    assert done.returncode == 0, output
    return output


def _state(db):
    db.session.remove()
    changes = db.session.scalar(select(func.count()).select_from(ChangeLog))
    devices = list(db.session.scalars(select(AgentDevice)))
    return changes, devices


@pytest.mark.parametrize("agent", [fusioninventory, ocsinventory], ids=["fusioninventory", "ocsinventory"])
def test_the_agent_inventories_this_machine_and_a_second_run_changes_nothing(live_server, token, committed_db, agent):
    db = committed_db
    url = f"{live_server}/api/v1/agent-inventory/{token}"
    with tempfile.TemporaryDirectory() as vardir:
        output = _run(agent(url, vardir))
        _, devices = _state(db)
        assert len(devices) == 1, output
        device = devices[0]
        ci = db.session.get(ConfigurationItem, device.ci_id)
        assert ci is not None
        # This machine as the kernel and DMI describe it.
        hostname = _read("/proc/sys/kernel/hostname")
        assert ci.name == hostname
        serial = _read("/sys/class/dmi/id/product_serial")
        uuid = _read("/sys/class/dmi/id/product_uuid")
        if serial:
            assert ci.serial_number == serial
        if uuid:
            assert device.details["uuid"].lower() == uuid.lower()
        os_release = _read("/etc/os-release")
        assert ci.attributes["os"] in os_release or re.search(r"Debian|Ubuntu|Linux", ci.attributes["os"])
        macs = {_read(f"/sys/class/net/{n}/address") for n in _interfaces()}
        assert set(ci.attributes["mac_addresses"]) & macs
        assert device.details["interfaces"]
        installed = db.session.scalar(
            select(func.count())
            .select_from(Relationship)
            .where(
                Relationship.target_id == ci.id, Relationship.type == "installed_on", Relationship.valid_to.is_(None)
            )
        )
        packages = int(subprocess.run(["sh", "-c", "dpkg-query -W | wc -l"], capture_output=True, text=True).stdout)
        assert installed >= min(packages, 200) > 100

        before, _ = _state(db)
        output = _run(agent(url, vardir))
        after, devices = _state(db)
        assert after == before, output
        assert [d.ci_id for d in devices] == [ci.id]


def _read(path: str) -> str:
    try:
        return open(path).read().strip()
    except OSError:
        return ""


def _interfaces() -> list[str]:
    import os

    return [n for n in os.listdir("/sys/class/net") if n != "lo"]
