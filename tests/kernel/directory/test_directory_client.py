"""The LDAP side alone: nested groups walked with a depth cap and a cycle guard, what an Active
Directory entry's objectGUID and userAccountControl say, filter metacharacters in a login kept
as text, and settings that cannot work refused as an unavailable directory."""

from __future__ import annotations

import uuid

import pytest

from cairn.directory import client
from cairn.directory.client import DirectoryConfig, DirectoryUnavailable, GroupIndex
from tests.kernel.directory.slapd import PASSWORDS


def test_nested_groups_end_in_cycles_and_at_the_depth_cap():
    members = {
        "cn=a": {"uid=x"},
        "cn=b": {"cn=a"},
        "cn=c": {"cn=b"},
        "cn=d": {"cn=c", "cn=b"},
        "cn=b2": {"cn=d"},  # d is in b2 ...
        "cn=a2": {"cn=b2", "uid=y"},
    }
    members["cn=a"].add("cn=a2")  # ... and a2 (which holds b2) is in a: a cycle
    assert GroupIndex(members, max_depth=10).groups_of("UID=X") == {"cn=a", "cn=b", "cn=c", "cn=d", "cn=b2", "cn=a2"}
    assert GroupIndex(members, max_depth=2).groups_of("uid=x") == {"cn=a", "cn=b"}
    assert GroupIndex(members, max_depth=10).groups_of("uid=nobody") == set()


def test_active_directory_entries(db, directory):
    directory(CAIRN_LDAP_ACTIVE_DIRECTORY="true")
    config = DirectoryConfig.from_settings()
    guid = uuid.uuid4()
    result = {
        "dn": "CN=Ann Example,OU=Staff,DC=corp,DC=example",
        "raw_attributes": {
            "objectGUID": [guid.bytes_le],
            "mail": [b"Ann@Corp.Example"],
            "displayName": [b"Ann Example"],
            "department": [b"Finance"],
            "userAccountControl": [b"514"],  # NORMAL_ACCOUNT | ACCOUNTDISABLE
        },
    }
    entry = client.to_entry(config, result)
    assert (entry.external_id, entry.email, entry.department, entry.disabled) == (
        str(guid),
        "ann@corp.example",
        "Finance",
        True,
    )
    result["raw_attributes"]["userAccountControl"] = [b"512"]
    assert client.to_entry(config, result).disabled is False
    assert config.login_attributes == ("mail", "userPrincipalName", "sAMAccountName")


def test_filter_characters_in_a_login_are_plain_text(db, directory):
    config = DirectoryConfig.from_settings()
    for login in ("*", "alice*", "*)(uid=alice", "alice@example.org)(|(uid=*"):
        assert client.authenticate(config, login, PASSWORDS["alice"]) == (None, "unknown e-mail"), login
    entry, reason = client.authenticate(config, "alice", PASSWORDS["alice"])  # her uid is a login too
    assert (entry.email, reason) == ("alice@example.org", "")


@pytest.mark.parametrize(
    "settings",
    [
        {"CAIRN_LDAP_URL": "http://localhost"},
        {"CAIRN_LDAP_BIND_DN": None, "CAIRN_LDAP_USER_DN_TEMPLATE": None},
        {"CAIRN_LDAP_BIND_PASSWORD": "not the service password"},
    ],
)
def test_settings_that_cannot_work_are_an_unavailable_directory(db, directory, settings):
    directory(**settings)
    with pytest.raises(DirectoryUnavailable):
        client.authenticate(DirectoryConfig.from_settings(), "alice@example.org", PASSWORDS["alice"])
