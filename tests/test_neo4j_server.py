"""The local Neo4j control (app/neo4j_server) without starting a JVM: conf, pid files, the
command line's refusals, the Bolt certificate. Starting and stopping for real is exercised by
every module that runs a server (conftest, test_bolt_tls, test_outage, test_bulk_import)."""

from __future__ import annotations

import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from app.neo4j_server import Neo4jCtlError, Neo4jHome, ServerConf, listen_port, read_conf
from app.neo4j_server.cli import main
from app.neo4j_server.conf import bolt_requires_tls, conf_path, write_conf
from app.neo4j_server.home import _ensure_bolt_cert


def _home(tmp_path, **conf) -> Neo4jHome:
    (tmp_path / "conf").mkdir()
    write_conf(tmp_path, ServerConf(**conf))
    return Neo4jHome(tmp_path)


def test_the_conf_written_is_the_conf_read(tmp_path):
    home = _home(tmp_path, bolt_port=17001, http_port=17002, heap="384m", pagecache="64m")
    settings = read_conf(home.path)
    assert (listen_port(home.path, "bolt"), listen_port(home.path, "http")) == (17001, 17002)
    assert home.bolt_uri == "bolt://127.0.0.1:17001"
    assert settings["server.memory.heap.max_size"] == "384m" and settings["server.memory.pagecache.size"] == "64m"
    assert settings["server.bolt.advertised_address"] == "127.0.0.1:17001"
    assert not bolt_requires_tls(home.path) and "dbms.ssl.policy.bolt.enabled" not in settings


def test_only_a_short_lived_server_gives_up_the_optimising_compiler(tmp_path):
    quick = "server.jvm.additional=-XX:TieredStopAtLevel=1"
    (tmp_path / "long").mkdir(), (tmp_path / "short").mkdir()
    assert quick not in conf_path(_home(tmp_path / "long").path).read_text()
    assert quick in conf_path(_home(tmp_path / "short", short_lived=True).path).read_text().splitlines()


def test_a_tls_conf_requires_tls_and_names_the_certificate_folder(tmp_path):
    home = _home(tmp_path, bolt_tls=True)
    assert bolt_requires_tls(home.path)
    assert read_conf(home.path)["dbms.ssl.policy.bolt.base_directory"] == str(home.path / "certificates" / "bolt")


def test_a_folder_without_a_conf_is_no_home(tmp_path):
    with pytest.raises(Neo4jCtlError, match="is not a Neo4j home"):
        Neo4jHome(tmp_path)


def test_a_stale_pid_file_is_not_a_running_server(tmp_path):
    home = _home(tmp_path)
    (home.path / "run").mkdir()
    (home.path / "run" / "neo4j.pid").write_text(str(os.getpid()))  # alive, but not Neo4j for this home
    assert home.pid() is None and not home.running()
    assert not (home.path / "run" / "neo4j.pid").exists()


def test_the_command_line_refuses_bad_usage_and_answers_status(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 3  # not a home: not running
    assert main(["stop", str(tmp_path)]) == 0  # safe to call anywhere
    assert main(["init", str(tmp_path), "--bolt-port", "17003", "--http-port", "17003"]) == 2
    assert "must differ" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(["init", str(tmp_path), "--heap", "lots"])
    assert bad.value.code == 2
    assert not (tmp_path / "conf").exists()  # nothing written for a refused command


def test_the_bolt_certificate_is_made_once_with_a_private_key(tmp_path):
    folder = tmp_path / "bolt"
    _ensure_bolt_cert(folder)
    assert (folder / "private.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((folder / "public.crt").read_bytes())
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    made = (folder / "public.crt").read_bytes()
    _ensure_bolt_cert(folder)  # kept across inits: clients keep trusting it
    assert (folder / "public.crt").read_bytes() == made
