"""The controller's TLS material: a cluster CA made at first start and a serving certificate
signed by it (DATA_DIR/pki/{ca,server}.{crt,key}; keys 0600).

kubectl (client-go) sends a bearer token only over TLS, so the API server speaks HTTPS. The
CA stays for the life of the cluster; the serving certificate is made again when it is missing,
near its end, not signed by the CA, or does not name an address the server listens on.

Agents learn the CA the way k3s agents do: the join token carries the SHA-256 of the CA bundle
(``K10<hex>::<secret>``). The agent fetches ``/cacerts`` (public) without verifying, checks the
hash, and from then on trusts only that CA (see :mod:`skiff.api.trust`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass

__all__ = ["PKI", "ensure_pki", "server_names"]

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
DEFAULT_DNS = ("localhost", "skiff", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


@dataclass
class PKI:
    dir: str
    ca_file: str
    cert_file: str
    key_file: str

    @property
    def ca_pem(self) -> bytes:
        with open(self.ca_file, "rb") as f:
            return f.read()

    @property
    def ca_hash(self) -> str:
        return hashlib.sha256(self.ca_pem).hexdigest()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write(path: str, data: bytes, mode: int) -> None:
    from skiff.runtime.fsutil import atomic_write
    atomic_write(path, data, mode=mode)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load(cert_file: str, key_file: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    try:
        with open(cert_file, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_file, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError):
        return None, None
    return cert, key


def _make_ca(d: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"skiff-ca@{int(_now().timestamp())}")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    from cryptography.hazmat.primitives import serialization
    _write(os.path.join(d, "ca.key"), _key_pem(key), 0o600)
    _write(os.path.join(d, "ca.crt"), cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _sans(cert) -> tuple[set[str], set[str]]:
    from cryptography import x509
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return ({str(i) for i in ext.get_values_for_type(x509.IPAddress)},
            set(ext.get_values_for_type(x509.DNSName)))


def _server_ok(cert, ca_cert, ips: set[str], dns: set[str]) -> bool:
    if cert is None or cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # noqa: BLE001 - any verification failure means: make a new one
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    have_ips, have_dns = _sans(cert)
    return ips <= have_ips and dns <= have_dns


def _make_server(d: str, ca_cert, ca_key, ips: set[str], dns: set[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    key = _new_key()
    now = _now()
    alt = [x509.DNSName(n) for n in sorted(dns)] + [x509.IPAddress(ipaddress.ip_address(i)) for i in sorted(ips)]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skiff-apiserver")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(os.path.join(d, "server.key"), _key_pem(key), 0o600)
    _write(os.path.join(d, "server.crt"), cert.public_bytes(serialization.Encoding.PEM), 0o644)


def local_addresses() -> set[str]:
    """Every address of this host's interfaces (for a server listening on 0.0.0.0 or ::)."""
    out = {"127.0.0.1", "::1"}
    try:
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            for msg in ipr.get_addr():
                a = msg.get_attr("IFA_ADDRESS")
                if a and not a.startswith("fe80:"):
                    out.add(a)
    except Exception:  # noqa: BLE001 - fall back to what the resolver knows
        try:
            for info in socket.getaddrinfo(socket.gethostname(), None):
                out.add(info[4][0])
        except OSError:
            pass
    return out


def server_names(listen_host: str, extra: list[str] | tuple[str, ...] = ()) -> tuple[set[str], set[str]]:
    """The (IPs, DNS names) the serving certificate must carry for ``listen_host`` plus ``extra``
    (--tls-san): loopback, the host name, and the listen address (every local address for a
    wildcard listen)."""
    ips: set[str] = {"127.0.0.1", "::1"}
    dns: set[str] = set(DEFAULT_DNS)
    host = socket.gethostname().lower()
    if host:
        dns.add(host)
    for name in [listen_host, *extra]:
        if not name:
            continue
        try:
            ip = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            dns.add(name.lower())
            continue
        if ip.is_unspecified:
            ips |= local_addresses()
        else:
            ips.add(str(ip))
    return ips, dns


def ensure_pki(data_dir: str, listen_host: str = "127.0.0.1", extra_sans=()) -> PKI:
    d = os.path.join(data_dir, "pki")
    os.makedirs(d, mode=0o700, exist_ok=True)
    pki = PKI(d, os.path.join(d, "ca.crt"), os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    ca_cert, ca_key = _load(pki.ca_file, os.path.join(d, "ca.key"))
    if ca_cert is None:
        ca_cert, ca_key = _make_ca(d)
    ips, dns = server_names(listen_host, extra_sans)
    cert, _ = _load(pki.cert_file, pki.key_file)
    if not _server_ok(cert, ca_cert, ips, dns):
        if cert is not None:  # keep the names it had: a restart on another address must not drop them
            old_ips, old_dns = _sans(cert)
            ips |= old_ips
            dns |= old_dns
        _make_server(d, ca_cert, ca_key, ips, dns)
    return pki
