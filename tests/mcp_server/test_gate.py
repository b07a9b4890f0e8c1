"""Who may talk to ``mcp --http``: the token, Host and Origin checks on a real server."""

from __future__ import annotations

from urllib.parse import urlsplit

import anyio
import pytest

from tests.conftest import FIXTURES
from tests.mcp_server._support import TIMEOUT, cli_json
from tests.mcp_server.test_http import TOKEN, http_server, http_session, post_initialize

FULL = FIXTURES / "full"
MINIMAL = FIXTURES / "minimal"
EVIL = "http://evil.example"


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.mark.parametrize("address", ["127.0.0.2:0", "LOCALHOST:0", "[::ffff:127.0.0.1]:0"])
def test_every_spelling_of_loopback_keeps_the_host_and_origin_checks(address: str) -> None:
    # What a page at evil.example sends once its name is rebound to the server's address.
    with http_server(MINIMAL, "--allow-run", address=address) as server:
        port = _port(server.url)
        evil_origin = post_initialize(server.url, {"Origin": f"{EVIL}:{port}"})
        evil_host = post_initialize(server.url, {"Host": f"evil.example:{port}"})
        plain = post_initialize(server.url, {})
    assert (evil_origin.status_code, evil_host.status_code, plain.status_code) == (403, 421, 200)
    assert evil_origin.json()["error"]["code"] == -32600
    assert not any("checks are off" in line for line in server.stderr)


def test_a_loopback_bind_accepts_its_own_names_in_the_host_header() -> None:
    with http_server(MINIMAL, address="127.0.0.2:0") as server:
        port = _port(server.url)
        statuses = [
            post_initialize(server.url, {"Host": host}).status_code
            for host in (f"127.0.0.2:{port}", f"localhost:{port}", f"LOCALHOST:{port}")
        ]
    assert statuses == [200, 200, 200]


@pytest.mark.anyio
async def test_a_public_bind_with_a_token_still_checks_the_origin_but_not_the_host() -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with http_server(
        FULL, "--token-env", "AP_TEST_TOKEN", env={"AP_TEST_TOKEN": TOKEN}, address="0.0.0.0:0"
    ) as server:
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        port = _port(url)
        no_token = post_initialize(url, {})
        foreign_origin = post_initialize(url, {**auth, "Origin": EVIL})
        local_origin = post_initialize(url, {**auth, "Origin": "http://localhost:6274"})
        # Reached under a name of the machine's that we cannot know.
        any_host = post_initialize(url, {**auth, "Host": f"build-box.lan:{port}"})
        with anyio.fail_after(TIMEOUT):
            async with http_session(url, auth) as session:
                result = await session.call_tool("graph", {})
    assert no_token.status_code == 401
    assert foreign_origin.status_code == 403
    assert (local_origin.status_code, any_host.status_code) == (200, 200)
    assert result.structured_content == cli_json(FULL, "graph")
    assert any("other machines" in line for line in server.stderr)


def test_the_bearer_scheme_is_case_insensitive() -> None:
    with http_server(
        MINIMAL, "--token-env", "AP_TEST_TOKEN", env={"AP_TEST_TOKEN": TOKEN}
    ) as server:
        statuses = {
            scheme: post_initialize(server.url, {"Authorization": f"{scheme} {TOKEN}"}).status_code
            for scheme in ("bearer", "BEARER", "Bearer", "bEaReR")
        }
        # The token itself is compared exactly.
        wrong_case = post_initialize(server.url, {"Authorization": f"bearer {TOKEN.upper()}"})
    assert set(statuses.values()) == {200}, statuses
    assert wrong_case.status_code == 401
