"""A real OpenLDAP server for the directory tests: its own slapd on free ports (ldap:// with
StartTLS and ldaps://), a slapd.conf generated here (mdb database in a temporary directory, the
cosine, inetorgperson and nis schemas), certificates from a CA made here, and an LDIF of people
and groups: an admin, a technician through a nested group (with a cycle among the groups), a user
without e-mail, a disabled user, a requester in no mapped group."""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SLAPD = "/usr/sbin/slapd"
LDAPADD = "/usr/bin/ldapadd"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-for-tests"
SERVICE_DN = f"cn=cairn,ou=service,{SUFFIX}"
SERVICE_PASSWORD = "service-secret-for-tests"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
PASSWORDS = {
    "alice": "alice-directory-pw",
    "bob": "bob-directory-pw",
    "carol": "carol-directory-pw",
    "dave": "dave-directory-pw",
    "erin": "erin-directory-pw",
}


def dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group(name: str) -> str:
    return f"cn={name},{GROUPS}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _person(uid, given, sn, *, mail=None, phone=None, department=None, manager=None, disabled=False) -> str:
    lines = [
        f"dn: {dn(uid)}",
        "objectClass: inetOrgPerson",
        f"uid: {uid}",
        f"cn: {given} {sn}",
        f"sn: {sn}",
        f"displayName: {given} {sn}",
        f"userPassword: {PASSWORDS[uid]}",
    ]
    lines += [f"mail: {mail}"] if mail else []
    lines += [f"telephoneNumber: {phone}"] if phone else []
    lines += [f"departmentNumber: {department}"] if department else []
    lines += [f"manager: {dn(manager)}"] if manager else []
    lines += ["employeeType: disabled"] if disabled else []
    return "\n".join(lines)


def _group(name: str, *members: str) -> str:
    return "\n".join(
        [f"dn: {group(name)}", "objectClass: groupOfNames", f"cn: {name}", *(f"member: {m}" for m in members)]
    )


def base_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: ou=service,{SUFFIX}\nobjectClass: organizationalUnit\nou: service",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: cairn\n"
        f"userPassword: {SERVICE_PASSWORD}",
        _person("alice", "Alice", "Admin", mail="alice@example.org", phone="+33 1 23 45 67 89", department="IT"),
        _person("bob", "Bob", "Tech", mail="bob@example.org", department="Service desk", manager="alice"),
        _person("carol", "Carol", "Nomail"),
        _person("dave", "Dave", "Gone", mail="dave@example.org", disabled=True),
        _person("erin", "Erin", "Sales", mail="erin@example.org", manager="bob"),
        _group("admins", dn("alice")),
        # nested, with a cycle: bob is in l1-helpdesk, which is in helpdesk, which is in l1-helpdesk
        _group("helpdesk", group("l1-helpdesk")),
        _group("l1-helpdesk", dn("bob"), group("helpdesk")),
        _group("staff", dn("erin"), dn("carol"), dn("dave")),
    ]
    return "\n\n".join(entries) + "\n"


def make_certificates(directory: Path, host: str = "localhost") -> dict[str, Path]:
    """A CA, a server certificate it signs for ``host``, and a second CA that signed nothing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def ca(common: str):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(name(common))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = ca("Cairn test CA")
    _other_key, other_cert = ca("Some other CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(name(host))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host)]),  # not 127.0.0.1: the wrong-name test uses it
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = {
        "ca": directory / "ca.pem",
        "other_ca": directory / "other-ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(pem))
    paths["other_ca"].write_bytes(other_cert.public_bytes(pem))
    paths["cert"].write_bytes(server_cert.public_bytes(pem))
    paths["key"].write_bytes(
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths["key"].chmod(0o600)
    return paths


@dataclass
class Slapd:
    directory: Path
    port: int
    tls_port: int
    certificates: dict[str, Path]
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ldap://localhost:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"ldaps://localhost:{self.tls_port}"

    def settings(self, **overrides) -> dict:
        """The app settings for search-then-bind over StartTLS, trusting the test CA."""
        return {
            "CAIRN_LDAP_URL": self.url,
            "CAIRN_LDAP_START_TLS": "true",
            "CAIRN_LDAP_CA_FILE": str(self.certificates["ca"]),
            "CAIRN_LDAP_BIND_DN": SERVICE_DN,
            "CAIRN_LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
            "CAIRN_LDAP_USER_BASE": PEOPLE,
            "CAIRN_LDAP_GROUP_BASE": GROUPS,
            "CAIRN_LDAP_USER_FILTER": "(objectClass=inetOrgPerson)",
            "CAIRN_LDAP_DISABLED_FILTER": "(employeeType=disabled)",
            "CAIRN_LDAP_TIMEOUT": "3",
            **overrides,
        }

    def ldapmodify(self, ldif: str) -> None:
        """Change the directory as its administrator would (LDIF with changetype lines)."""
        subprocess.run(
            ["/usr/bin/ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(),
            check=True,
            capture_output=True,
            timeout=20,
        )

    def start(self) -> Slapd:
        urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"
        log = (self.directory / "slapd.log").open("ab")
        self.process = subprocess.Popen(
            [SLAPD, "-f", str(self.directory / "slapd.conf"), "-h", urls, "-d", "0"],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("slapd exited: " + (self.directory / "slapd.log").read_text()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("slapd did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _config(directory: Path, certificates: dict[str, Path], service_size_limit: int | str) -> str:
    schema = Path("/etc/ldap/schema")
    return f"""
include {schema / "core.schema"}
include {schema / "cosine.schema"}
include {schema / "inetorgperson.schema"}
include {schema / "nis.schema"}
pidfile {directory / "slapd.pid"}
argsfile {directory / "slapd.args"}
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {certificates["ca"]}
TLSCertificateFile {certificates["cert"]}
TLSCertificateKeyFile {certificates["key"]}

database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {directory / "data"}
limits dn.exact="{SERVICE_DN}" size={service_size_limit}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by anonymous auth
"""


def start_slapd(directory: Path, service_size_limit: int | str = "unlimited") -> Slapd:
    """Start a slapd with the test LDIF loaded (the service account may read ``service_size_limit``
    entries per search); stop it with ``.stop()``."""
    if not Path(SLAPD).exists():
        raise RuntimeError(f"{SLAPD} is missing: run `make services` (bash .ci/services.sh) to install slapd")
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "data").mkdir(parents=True)
    certificates = make_certificates(directory)
    (directory / "slapd.conf").write_text(_config(directory, certificates, service_size_limit))
    server = Slapd(directory, free_port(), free_port(), certificates).start()
    (directory / "base.ldif").write_text(base_ldif())
    subprocess.run(
        [LDAPADD, "-x", "-H", server.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, "-f", str(directory / "base.ldif")],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return server
