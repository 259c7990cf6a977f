"""HTTPS: `graphflags dev-cert`, then `graphflags serve` as a real process with the certificate.

The served process answers over TLS to a client that trusts the certificate, and a
plain-HTTP request to the same port gets no answer at all.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from app.settings import Settings
from tests.conftest import TEST_CATALOG
from tests.support.serve import Served, service_env

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dev_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from app.cli import main

    out = tmp_path_factory.mktemp("tls")
    result = CliRunner().invoke(main, ["dev-cert", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "cert.pem", out / "key.pem"


def test_dev_cert_is_for_localhost_and_its_key_is_private(dev_cert):
    from cryptography import x509

    cert_path, key_path = dev_cert
    assert (key_path.stat().st_mode & 0o777) == 0o600
    assert b"PRIVATE KEY" in key_path.read_bytes()
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]


def test_half_a_tls_configuration_is_refused(dev_cert):
    with pytest.raises(ValueError, match="GRAPHFLAGS_TLS_CERT_FILE and GRAPHFLAGS_TLS_KEY_FILE"):
        Settings(tls_cert_file=dev_cert[0])


def test_serve_answers_https_only(dev_cert, migrated: Settings, tmp_path):
    cert_path, key_path = dev_cert
    env = service_env(
        migrated,
        GRAPHFLAGS_TLS_CERT_FILE=str(cert_path),
        GRAPHFLAGS_TLS_KEY_FILE=str(key_path),
        GRAPHFLAGS_FLAGS_FILE=str(TEST_CATALOG),
        GRAPHFLAGS_JWT_DEV_KEY_FILE=str(tmp_path / "dev-jwt.key"),
    )
    env.pop("GRAPHFLAGS_METRICS_PORT", None)  # no second listener to collide with
    trust = ssl.create_default_context(cafile=str(cert_path))
    server = Served(env, tmp_path / "serve.log", name="graphflags serve (HTTPS)")
    port = server.port

    def answers_https() -> bool:
        try:
            return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trust, timeout=5) is not None
        except httpx.ConnectError as error:
            if "CERTIFICATE_VERIFY_FAILED" in str(error):
                raise AssertionError(f"the served certificate is not the one made: {error}") from None
            return False

    with server.start(ready=answers_https):
        response = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trust, timeout=5)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert httpx.get(f"https://localhost:{port}/healthz", verify=trust, timeout=5).status_code == 200
        # Plain HTTP to the TLS port: the server drops it, nothing is answered.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        # A client that does not trust this certificate refuses the connection.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/healthz", verify=ssl.create_default_context(), timeout=5)
