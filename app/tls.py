"""Self-signed development certificates: HTTPS served locally (`graphflags dev-cert`) and Bolt
over TLS on a local Neo4j (`graphflags neo4j init --bolt-tls`). The one certificate maker.

Production certificates come from the operator's CA (or ACME) and are only named in the
settings (GRAPHFLAGS_TLS_CERT_FILE / GRAPHFLAGS_TLS_KEY_FILE); nothing here is used then.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"


def write_dev_cert(
    out: Path,
    *,
    days: int = 365,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"),
    cert_name: str = CERT_NAME,
    key_name: str = KEY_NAME,
    common_name: str = "graphflags development",
    rsa: bool = False,
) -> tuple[Path, Path]:
    """Write `out/<cert_name>` and `out/<key_name>` (mode 600) for `hosts`; returns their paths.

    The key is P-256 unless `rsa` (2048 bits): Neo4j's Bolt TLS is given RSA, as it always was.

    The certificate is its own trust anchor: clients verify with it as the CA file
    (curl --cacert, httpx verify=ssl.create_default_context(cafile=...)).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = (
        rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
        if rsa
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graphflags (local, self-signed)"),
        ]
    )
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # A CA that signs nothing but itself: what strict verifiers (Python 3.13's
        # VERIFY_X509_STRICT, browsers) expect of a trust anchor that is also the leaf.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=rsa,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    out.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = out / key_name, out / cert_name
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 600 from the first byte on, never readable by others even briefly.
    tmp = key_path.with_name(f".{key_name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    os.chmod(tmp, 0o600)
    os.replace(tmp, key_path)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
