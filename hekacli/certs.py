"""A throw-away PKI for trying TLS locally: one CA, a server and a client certificate.

Used by `heka certs DIR` and by the tests of every area that needs TLS. Keys are EC P-256; the server
certificate is valid for ``127.0.0.1``, ``::1`` and ``localhost``; the client certificate carries the
client-auth extended key usage. Private keys are written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import OutputError


@dataclass(frozen=True, slots=True)
class PKI:
    """Paths of the files `make_pki` wrote."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def files(self) -> list[Path]:
        return [self.ca_cert, self.ca_key, self.server_cert, self.server_key, self.client_cert,
                self.client_key]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hekacli test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _issue(subject_cn: str, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
           key: ec.EllipticCurvePrivateKey, *, days: int, ca: bool = False,
           eku: list[x509.ObjectIdentifier] | None = None,
           hosts: list[str] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                          content_commitment=False, key_encipherment=False, data_encipherment=False,
                          key_agreement=True, encipher_only=False, decipher_only=False), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if hosts:
        sans: list[x509.GeneralName] = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: str | os.PathLike[str], *, days: int = 365,
             hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")) -> PKI:
    """Create ``ca.pem ca-key.pem server.pem server-key.pem client.pem client-key.pem`` in `directory`.

    Existing files are replaced. Raises OutputError when the directory cannot be written.
    """
    d = Path(directory)
    pki = PKI(d, d / "ca.pem", d / "ca-key.pem", d / "server.pem", d / "server-key.pem", d / "client.pem",
              d / "client-key.pem")
    try:
        d.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("hekacli test CA")
        ca_cert = _issue("hekacli test CA", ca_name, ca_key, ca_key, days=days, ca=True)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = _issue(hosts[0] if hosts else "localhost", ca_name, ca_key, server_key, days=days,
                             eku=[ExtendedKeyUsageOID.SERVER_AUTH], hosts=list(hosts))
        client_key = ec.generate_private_key(ec.SECP256R1())
        client_cert = _issue("hekacli client", ca_name, ca_key, client_key, days=days,
                             eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        pem = serialization.Encoding.PEM
        _write(pki.ca_cert, ca_cert.public_bytes(pem))
        _write(pki.ca_key, _key_pem(ca_key), private=True)
        _write(pki.server_cert, server_cert.public_bytes(pem))
        _write(pki.server_key, _key_pem(server_key), private=True)
        _write(pki.client_cert, client_cert.public_bytes(pem))
        _write(pki.client_key, _key_pem(client_key), private=True)
    except OSError as exc:
        raise OutputError(f"cannot write certificates: {exc.strerror or exc}", file=str(d)) from None
    return pki
