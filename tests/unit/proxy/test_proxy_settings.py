"""The MOORAGE_PROXY* and MOORAGE_ACME_* settings (SPEC section 12), and the host rule of a
domain (RFC 1123 labels)."""

from __future__ import annotations

import pytest

from moorage.errors import ConfigError, InvalidInput
from moorage.services.domains import check_host
from moorage.settings import Settings


def settings(**env: str) -> Settings:
    return Settings.from_env({"MOORAGE_DATA_DIR": "/tmp/x", **env})


def test_proxy_settings_are_parsed_and_checked() -> None:
    s = settings(
        MOORAGE_PROXY="caddy",
        MOORAGE_PROXY_HTTP_ADDR="127.0.0.1:8080",
        MOORAGE_ACME_CA_ROOT="roots/test.pem",
        MOORAGE_PUBLIC_IP="2001:db8::1",
    )
    assert (s.proxy, s.proxy_http_addr, s.proxy_https_addr) == ("caddy", "127.0.0.1:8080", ":443")
    assert s.acme_ca_root is not None and s.acme_ca_root.is_absolute()
    assert settings(MOORAGE_PROXY="none").proxy == "none"
    for env, needle in [
        ({"MOORAGE_PROXY": "nginx"}, "caddy or none"),
        ({"MOORAGE_PROXY_ADMIN_ADDR": "0.0.0.0:2019"}, "loopback"),
        ({"MOORAGE_PROXY_HTTPS_ADDR": "443"}, "look like"),
        ({"MOORAGE_PUBLIC_IP": "example.com"}, "not an IP address"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            settings(**env)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("App.Example.COM", "app.example.com"),
        ("*.example.com", "*.example.com"),
        ("a-b.c.d", "a-b.c.d"),
    ],
)
def test_dns_host_names_pass(host: str, expected: str) -> None:
    assert check_host(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "",
        "com",
        "-a.example.com",
        "a-.example.com",
        "a..example.com",
        "a_b.example.com",
        "*.*.example.com",
        "a.*.example.com",
        "1.2.3.4",
        "x" * 64 + ".com",
        ("a." * 127) + "com",
        "app.example.com/x",
        "ex ample.com",
    ],
)
def test_other_host_names_are_refused(host: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_host(host)
    assert err.value.code == "invalid_domain"


def test_trusted_proxies_default_to_loopback_and_may_be_none() -> None:
    """MOORAGE_TRUSTED_PROXIES: whose X-Forwarded-For names the client (attacker pass H:
    any process on the host could name any address through 127.0.0.1)."""
    assert settings().trusted_proxies == ("127.0.0.1",)
    assert settings(MOORAGE_TRUSTED_PROXIES="").trusted_proxies == ()
    assert settings(MOORAGE_TRUSTED_PROXIES=" 10.0.0.0/8, ::1 ,").trusted_proxies == (
        "10.0.0.0/8",
        "::1",
    )
    with pytest.raises(ConfigError, match="IP addresses or networks"):
        settings(MOORAGE_TRUSTED_PROXIES="proxy.example.com")
