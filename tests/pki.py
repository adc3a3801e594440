"""A throw-away PKI for the TLS tests: a CA, server and terminal certificates made on the fly.

Keys are EC P-256 (what hardware/provision.sh makes on the terminal); files are written 0600 so
the configuration's permission check accepts them.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = dt.timedelta(days=1)
SERVER = ExtendedKeyUsageOID.SERVER_AUTH


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kiosk tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


@dataclass
class Issued:
    cert: Path
    key: Path


class CA:
    """A certificate authority in ``directory`` (ca.pem); ``issue`` signs server and terminal certs."""

    def __init__(self, directory: Path, name: str = "kiosk test CA") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - DAY)
            .not_valid_after(_now() + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.dir / f"{name.replace(' ', '-')}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def sign(
        self,
        public_key: object,
        cn: str,
        *,
        hosts: tuple[str, ...] = (),
        client: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> x509.Certificate:
        import ipaddress

        sans: list[x509.GeneralName] = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.name)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or _now() - DAY)
            .not_valid_after(not_after or _now() + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else SERVER]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(self.key, hashes.SHA256())

    def issue(
        self,
        stem: str,
        cn: str,
        *,
        hosts: tuple[str, ...] = (),
        client: bool = False,
        expired: bool = False,
    ) -> Issued:
        """A new key and certificate as ``<stem>.pem`` / ``<stem>.key`` (0600) in the CA's directory."""
        key = ec.generate_private_key(ec.SECP256R1())
        window = {}
        if expired:
            window = {"not_before": _now() - 60 * DAY, "not_after": _now() - DAY}
        cert = self.sign(key.public_key(), cn, hosts=hosts, client=client, **window)
        cert_path = self.dir / f"{stem}.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return Issued(cert_path, _write_key(key, self.dir / f"{stem}.key"))

    def sign_csr(self, csr_pem: bytes, stem: str) -> Path:
        """Sign a terminal's certificate request (from provision.sh) as a client certificate."""
        csr = x509.load_pem_x509_csr(csr_pem)
        assert csr.is_signature_valid
        cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        cert = self.sign(csr.public_key(), str(cn), client=True)
        path = self.dir / f"{stem}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path


@dataclass
class Pki:
    """Everything one test needs: the platform's CA with a server cert for localhost/127.0.0.1 and a
    terminal cert (CN = the station id), plus a second CA for "a certificate from another CA"."""

    ca: CA
    other: CA
    server: Issued
    terminal: Issued


def make_pki(directory: Path, station: str = "001") -> Pki:
    ca = CA(directory / "ca")
    return Pki(
        ca=ca,
        other=CA(directory / "other", name="someone else CA"),
        server=ca.issue("server", "platform.test", hosts=("localhost", "127.0.0.1")),
        terminal=ca.issue("terminal", station, client=True),
    )
