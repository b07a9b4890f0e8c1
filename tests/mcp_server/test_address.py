"""Where ``mcp --http`` listens: loopback decided by address, Host and Origin by the same rule."""

from __future__ import annotations

import pytest

from async_pipeline.errors import UsageError
from async_pipeline.mcp_server._address import (
    loopback_host_header,
    loopback_origin,
    resolve_bind,
)

LOOPBACK = ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1", "localhost"]
LOOPBACK += ["LOCALHOST", "LocalHost"]
ELSEWHERE = ["0.0.0.0", "::", "10.0.0.1", "192.168.1.5", "::ffff:10.0.0.1", "fe80::1"]
ELSEWHERE += ["example.com", "localhost.example.com", "my-laptop"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_a_loopback_address_is_loopback_however_it_is_spelled(host: str) -> None:
    assert resolve_bind(host).loopback


@pytest.mark.parametrize("host", ELSEWHERE)
def test_other_addresses_and_unknown_names_are_not_loopback(host: str) -> None:
    assert not resolve_bind(host).loopback


def test_no_host_is_127_0_0_1() -> None:
    bind = resolve_bind(None)
    assert (bind.address, bind.loopback) == ("127.0.0.1", True)


@pytest.mark.parametrize("host", ["0", "127.1", "0x7f.1", "2130706433", "1.2.3"])
def test_an_abbreviated_ipv4_address_is_a_usage_error(host: str) -> None:
    # The C library would bind "0" as 0.0.0.0 and "127.1" as 127.0.0.1.
    with pytest.raises(UsageError) as caught:
        resolve_bind(host)
    assert caught.value.code == "ASYNC_PIPELINE_USAGE"


def test_an_ipv6_address_is_shown_in_brackets() -> None:
    assert resolve_bind("::1").shown == "[::1]"
    assert resolve_bind("LOCALHOST").shown == "localhost"


@pytest.mark.parametrize(
    "value",
    ["127.0.0.1:8765", "localhost:1", "LOCALHOST:1", "localhost", "127.0.0.2:80", "[::1]:8765"],
)
def test_a_host_header_naming_loopback_passes(value: str) -> None:
    assert loopback_host_header(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "evil.example:8765",
        "127.0.0.1.evil.example:8765",
        "localhost.:8765",
        "localhost:http",
        "[::1]x",
        "[127.0.0.1]:80",
        "0.0.0.0:8765",
        "10.0.0.1:8765",
    ],
)
def test_a_host_header_naming_anything_else_fails(value: str | None) -> None:
    assert not loopback_host_header(value)


@pytest.mark.parametrize(
    "value",
    [
        "http://localhost:6274",
        "http://127.0.0.1:3000",
        "http://127.0.0.2:3000",
        "https://LOCALHOST:1",
        "http://localhost",
        "http://[::1]:8080",
    ],
)
def test_an_origin_on_this_machine_is_allowed(value: str) -> None:
    assert loopback_origin(value)


@pytest.mark.parametrize(
    "value",
    [
        "null",
        "http://evil.example",
        "http://evil.example:8765",
        "http://localhost.evil.example:1",
        "http://127.0.0.1.evil.example",
        "file://localhost",
        "ftp://localhost:21",
        "http://user@localhost:1",
        "http://localhost:1/path",
        "http://localhost:99999",
        "http://0.0.0.0:8765",
    ],
)
def test_any_other_origin_is_refused(value: str) -> None:
    assert not loopback_origin(value)
