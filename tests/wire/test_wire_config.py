"""Config loading and endpoint parsing: every error names the file, line or key."""

from __future__ import annotations

import pytest

from hekacli.config import check_keys, get_typed, load_toml, load_yaml
from hekacli.errors import ConfigError, UsageError
from hekacli.transport import Endpoint, client_ssl_context, parse_endpoint, server_ssl_context


def test_parse_endpoint_forms() -> None:
    assert parse_endpoint("tcp://127.0.0.1:5565") == Endpoint("tcp", "127.0.0.1", 5565)
    assert parse_endpoint("127.0.0.1:6000") == Endpoint("tcp", "127.0.0.1", 6000)
    assert parse_endpoint("udp://localhost") == Endpoint("udp", "localhost", 5565)
    assert parse_endpoint("tls://[::1]:7000") == Endpoint("tls", "::1", 7000)
    assert parse_endpoint("tls://[::1]:7000").url == "tls://[::1]:7000"
    for bad in ("ftp://x:1", "tcp://:5565", "tcp://h:99999", "tcp://h:1/path"):
        with pytest.raises(UsageError) as exc:
            parse_endpoint(bad)
        assert bad in str(exc.value)


def test_yaml_errors(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("a: 1\nb: [1, 2\n")
    with pytest.raises(ConfigError) as exc:
        load_yaml(p)
    assert exc.value.file == str(p) and exc.value.line is not None
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(p)
    p.write_text("")
    assert load_yaml(p) == {}
    p.write_text("known: 1\nunknown: 2\n")
    with pytest.raises(ConfigError) as exc:
        load_yaml(p, allowed_keys=["known"])
    assert "'unknown'" in str(exc.value) and str(p) in str(exc.value)
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")


def test_toml_errors_and_keys(tmp_path) -> None:
    p = tmp_path / "flood.toml"
    p.write_text('ip_address = "127.0.0.1:5565"\n[signer]\nname = "test"\nversion = 0\n')
    data = load_toml(p, allowed_keys=["ip_address", "signer"])
    check_keys(data["signer"], ["name", "version", "hmac_key"], file=p, section="signer")
    with pytest.raises(ConfigError) as exc:
        check_keys(data["signer"], ["name"], file=p, section="signer")
    assert "signer.version" in str(exc.value)
    p.write_text("a = \n")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        load_toml(p)


def test_get_typed() -> None:
    data = {"n": 3, "flag": True, "name": "x", "ratio": 1}
    assert get_typed(data, "n", int) == 3
    assert get_typed(data, "ratio", float) == 1
    assert get_typed(data, "missing", int, 7) == 7
    with pytest.raises(ConfigError, match="'flag' must be int"):
        get_typed(data, "flag", int)
    with pytest.raises(ConfigError, match="missing key"):
        get_typed(data, "missing", int)


def test_ssl_context_file_errors_name_the_file(tmp_path, pki) -> None:
    with pytest.raises(ConfigError) as exc:
        server_ssl_context(tmp_path / "nope.pem", tmp_path / "nope-key.pem")
    assert "nope.pem" in str(exc.value)
    with pytest.raises(ConfigError, match="client CA"):
        server_ssl_context(pki.server_cert, pki.server_key, require_client_cert=True)
    with pytest.raises(ConfigError, match="unknown TLS version"):
        client_ssl_context(ca=pki.ca_cert, min_version="TLS99")
    ctx = server_ssl_context(
        pki.server_cert, pki.server_key, client_ca=pki.ca_cert, require_client_cert=True, min_version="TLS12"
    )
    assert ctx.minimum_version.name == "TLSv1_2"
