"""The Anthropic Messages API backend against a fake Messages API on loopback (no patched SDK)."""

from __future__ import annotations

import inspect
import os
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from async_pipeline import agent, define_pipeline, env, job, task
from async_pipeline.agents.anthropic_backend import (
    DEFAULT_MAX_TOKENS,
    ERROR_KINDS,
    AnthropicBackend,
    error_kind,
    translate_error,
)
from async_pipeline.agents.backends import AgentBackendError, AgentReply, backend_for
from async_pipeline.core.model import AgentProfile
from async_pipeline.runner import run_job
from async_pipeline.runner.records import RUNS_DIR
from async_pipeline.testing import new_canary, scan_for_canary

from .conftest import FakeMessagesAPI, Reply, error_body, message_body

anthropic = pytest.importorskip("anthropic")

PROFILE = AgentProfile(command=(), model="claude-test", api="anthropic")
WAIT_S = 10  # the bound on any one call in these tests; each should take milliseconds


async def _complete(
    api: FakeMessagesAPI | None,
    key: str | None,
    *,
    profile: AgentProfile = PROFILE,
    timeout_ms: int | None = 5000,
    base_url: str | None = None,
) -> AgentReply:
    task_env = {"PATH": os.defpath}
    if key is not None:
        task_env["ANTHROPIC_API_KEY"] = key
    url = base_url or (api.url if api is not None else None)
    if url is not None:
        task_env["ANTHROPIC_BASE_URL"] = url
    with anyio.fail_after(WAIT_S):
        return await AnthropicBackend().complete(
            prompt="Say hello.",
            model="claude-test",
            profile=profile,
            env=task_env,
            timeout_ms=timeout_ms,
        )


async def _failure(api: FakeMessagesAPI | None, key: str | None, **kw: Any) -> AgentBackendError:
    with pytest.raises(AgentBackendError) as caught:
        await _complete(api, key, **kw)
    return caught.value


def _leaks(key: str, *captured: object) -> list[Any]:
    """Where the key shows up, in any encoding, in exception texts or JSON-ready views."""
    return scan_for_canary(
        key,
        captured=[c if isinstance(c, str) else orjson.dumps(c).decode() for c in captured],
    )


def _auth_sent(api: FakeMessagesAPI) -> bytes:
    """The credential header of the last request, whichever one this SDK version uses."""
    headers = api.requests[-1].headers
    return headers.get("x-api-key") or headers.get("authorization", b"").removeprefix(b"Bearer ")


# --- success -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_reply_is_the_responses_text_and_the_key_stays_out_of_request_and_response(
    messages_api: FakeMessagesAPI,
) -> None:
    key = new_canary("anthropic-key")
    reply = await _complete(messages_api, key)

    assert reply.text == FakeMessagesAPI.DEFAULT_TEXT
    [sent] = messages_api.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.body == {
        "model": "claude-test",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    assert reply.request == sent.body
    assert _auth_sent(messages_api) == key.encode()
    assert reply.response == {
        "id": "msg_fake_01",
        "model": "claude-test",
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 7, "output_tokens": 3},
        "content": [{"type": "text", "text": FakeMessagesAPI.DEFAULT_TEXT}],
    }
    assert _leaks(key, reply.request, reply.response, reply.text) == []


@pytest.mark.anyio
async def test_the_reply_joins_every_text_block(messages_api: FakeMessagesAPI) -> None:
    body = message_body("claude-test", "")
    body["content"] = [{"type": "text", "text": "hello, "}, {"type": "text", "text": "world"}]
    messages_api.then(Reply(body=body))
    reply = await _complete(messages_api, "sk-test-key-0123456789")
    assert reply.text == "hello, world"
    assert [block["text"] for block in reply.response["content"]] == ["hello, ", "world"]


@pytest.mark.anyio
async def test_max_tokens_comes_from_the_profile(messages_api: FakeMessagesAPI) -> None:
    profile = AgentProfile(command=(), model="claude-test", api="anthropic", max_tokens=123)
    reply = await _complete(messages_api, "sk-test-key-0123456789", profile=profile)
    assert messages_api.requests[0].body["max_tokens"] == 123
    assert reply.request["max_tokens"] == 123


def test_backend_for_anthropic_is_this_backend() -> None:
    assert isinstance(backend_for("anthropic"), AnthropicBackend)


# --- API errors ----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "error_type", "headers"),
    [
        (400, "invalid_request_error", {}),
        (401, "authentication_error", {}),
        (403, "permission_error", {}),
        (429, "rate_limit_error", {"retry-after": "7"}),
        (500, "api_error", {}),
        (529, "overloaded_error", {}),
    ],
)
async def test_an_api_error_is_agent_failed_with_status_type_and_message_after_one_request(
    messages_api: FakeMessagesAPI, status: int, error_type: str, headers: dict[str, str]
) -> None:
    key = new_canary("anthropic-key")
    # The server echoes the key, as a careless proxy might: it must still not come back out.
    detail = f"the server says no (key {key})"
    messages_api.then(Reply(status, error_body(error_type, detail), headers=headers))

    error = await _failure(messages_api, key)

    assert error.code == "ASYNC_PIPELINE_AGENT_FAILED"
    assert error.response["status"] == status
    assert error.response["type"] == error_type
    assert "the server says no" in error.response["message"]
    assert str(status) in error.message and error_type in error.message
    assert len(messages_api.requests) == 1  # the SDK did not retry behind the task's back
    assert _leaks(key, str(error), error.message, error.response) == []


@pytest.mark.anyio
async def test_a_rate_limit_names_when_to_retry(messages_api: FakeMessagesAPI) -> None:
    messages_api.then(
        Reply(429, error_body("rate_limit_error", "slow down"), headers={"retry-after": "7"})
    )
    error = await _failure(messages_api, "sk-test-key-0123456789")
    assert error.response["retryAfter"] == "7"
    assert "retry after 7 s" in error.message


@pytest.mark.anyio
async def test_an_error_body_not_in_the_apis_shape_still_fails_with_its_status(
    messages_api: FakeMessagesAPI,
) -> None:
    messages_api.then(Reply(502, "<html>bad gateway</html>"))
    error = await _failure(messages_api, "sk-test-key-0123456789")
    assert error.code == "ASYNC_PIPELINE_AGENT_FAILED"
    assert error.response["status"] == 502
    assert error.response["type"] == "server_error"
    assert len(messages_api.requests) == 1


# --- transport failures ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_server_that_stalls_past_the_timeout_is_a_task_timeout(
    messages_api: FakeMessagesAPI,
) -> None:
    messages_api.then(Reply(stall=True))
    started = anyio.current_time()
    error = await _failure(messages_api, "sk-test-key-0123456789", timeout_ms=300)
    assert error.code == "ASYNC_PIPELINE_TASK_TIMEOUT"
    assert anyio.current_time() - started < 5
    assert len(messages_api.requests) == 1


@pytest.mark.anyio
async def test_a_refused_connection_is_agent_failed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    key = new_canary("anthropic-key")
    error = await _failure(None, key, base_url=f"http://127.0.0.1:{port}")
    assert error.code == "ASYNC_PIPELINE_AGENT_FAILED"
    assert error.response["status"] is None
    assert error.response["type"] == "connection_error"
    assert f"127.0.0.1:{port}" in error.message
    assert _leaks(key, str(error), error.response) == []


# --- configuration -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_missing_key_is_env_missing_and_nothing_is_sent(
    messages_api: FakeMessagesAPI,
) -> None:
    error = await _failure(messages_api, None)
    assert error.code == "ASYNC_PIPELINE_ENV_MISSING"
    assert "ANTHROPIC_API_KEY" in error.message
    assert messages_api.requests == []


@pytest.mark.anyio
async def test_the_key_and_endpoint_are_never_taken_from_the_process_environment(
    messages_api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-process-key-0123456789")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", messages_api.url)
    error = await _failure(None, None)
    assert error.code == "ASYNC_PIPELINE_ENV_MISSING"
    assert messages_api.requests == []


@pytest.mark.anyio
async def test_without_the_sdk_the_error_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # makes `import anthropic` fail
    error = await _failure(None, "sk-test-key-0123456789")
    assert error.code == "ASYNC_PIPELINE_AGENT_FAILED"
    assert "async-pipeline[anthropic]" in error.message


# --- the exception boundary ----------------------------------------------------------------


def _exported_exceptions() -> list[Any]:
    return sorted(
        {
            value
            for _, value in inspect.getmembers(anthropic, inspect.isclass)
            if issubclass(value, anthropic.AnthropicError)
        },
        key=lambda cls: cls.__name__,
    )


def test_every_exception_the_sdk_exports_is_mapped() -> None:
    exported = _exported_exceptions()
    api_errors = [cls for cls in exported if issubclass(cls, anthropic.APIError)]
    assert anthropic.APIConnectionError in api_errors and anthropic.APITimeoutError in api_errors
    assert [cls.__name__ for cls in exported if cls.__name__ not in ERROR_KINDS] == []


def _instance(cls: Any, key: str) -> Any:
    """A real instance of an SDK exception, built on the SDK's own HTTP request/response types."""
    from anthropic import _exceptions as sdk

    # Whichever HTTP library this SDK version builds its exceptions on (httpx, later httpx2).
    http: Any = vars(sdk).get("httpx2") or vars(sdk)["httpx"]
    request = http.Request("POST", "http://127.0.0.1:9/v1/messages")
    body = error_body("some_error", f"echoed {key}")
    if issubclass(cls, anthropic.APIConnectionError):
        return cls(request=request)  # APITimeoutError too
    if issubclass(cls, anthropic.APIStatusError):
        status = getattr(cls, "status_code", 500)
        response = http.Response(status, request=request, json=body, headers={"retry-after": "3"})
        return cls(f"Error code: {status} - {body}", response=response, body=body)
    if issubclass(cls, anthropic.APIResponseValidationError):
        return cls(http.Response(200, request=request, json={}), body)
    if issubclass(cls, anthropic.APIError):
        return cls(f"echoed {key}", request, body=body)
    return cls(f"echoed {key}")


@pytest.mark.parametrize("cls", _exported_exceptions(), ids=lambda cls: cls.__name__)
def test_every_exported_exception_translates_to_our_error_without_the_key(cls: Any) -> None:
    key = new_canary("anthropic-key")
    error = translate_error(
        _instance(cls, key), key=key, base_url="http://127.0.0.1:9", timeout_ms=1000
    )
    assert error_kind(cls) == ERROR_KINDS[cls.__name__]
    timed_out = issubclass(cls, anthropic.APITimeoutError)
    assert error.code == (
        "ASYNC_PIPELINE_TASK_TIMEOUT" if timed_out else "ASYNC_PIPELINE_AGENT_FAILED"
    )
    assert set(error.response) >= {"status", "type", "message"}
    assert _leaks(key, str(error), error.response) == []


# --- end to end ----------------------------------------------------------------------------


def test_a_pipeline_runs_an_api_agent_records_a_clean_transcript_and_then_hits_the_cache(
    tmp_path: Path, messages_api: FakeMessagesAPI
) -> None:
    canary = new_canary("anthropic-key")
    pipeline = define_pipeline(
        name="p",
        agents={"api": {"api": "anthropic", "model": "claude-test"}},
        env={"ANTHROPIC_API_KEY": env.secret("KEY_SRC")},
        tasks={
            "t": task(
                agent(use="api", prompt="hi", stdout_to="out.md"), outputs=["out.md"], cache=True
            )
        },
        jobs={"all": job(target="t")},
    )
    run_env = {
        "PATH": os.environ["PATH"],
        "KEY_SRC": canary,
        "ANTHROPIC_BASE_URL": messages_api.url,
    }

    first = run_job(pipeline, id="all", cwd=tmp_path, env=run_env)

    assert first.status == "passed", first.tasks[0].error
    assert (tmp_path / "out.md").read_text() == FakeMessagesAPI.DEFAULT_TEXT
    assert _auth_sent(messages_api) == canary.encode()
    transcript = tmp_path / RUNS_DIR / first.id / "agents" / "t.jsonl"
    lines = [orjson.loads(line) for line in transcript.read_bytes().splitlines()]
    assert [line["type"] for line in lines] == ["request", "response"]
    assert lines[1]["response"]["request"]["model"] == "claude-test"
    assert lines[1]["response"]["response"]["id"] == "msg_fake_01"
    assert scan_for_canary(canary, trees=[tmp_path / ".async"]) == []

    second = run_job(pipeline, id="all", cwd=tmp_path, env=run_env)

    assert second.status == "passed"
    assert second.tasks[0].cache_hit is True
    assert len(messages_api.requests) == 1
    assert (tmp_path / "out.md").read_text() == FakeMessagesAPI.DEFAULT_TEXT
