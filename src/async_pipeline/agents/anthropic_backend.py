"""The Anthropic Messages API backend: ``agents={"x": {"api": "anthropic", "model": ...}}``.

One prompt becomes one user message sent with the official ``anthropic`` SDK (the
``anthropic`` extra), imported only when a profile uses it. Everything the call needs
comes from the task's env, never from the process environment:

- ``ANTHROPIC_API_KEY``: required; the pipeline declares it with ``env.secret(...)`` so the
  redactor knows it. It goes to the SDK and nowhere else: not into the request recorded
  in the transcript, not into an error message.
- ``ANTHROPIC_BASE_URL``: optional endpoint override (a proxy, or a loopback fake in tests).

The SDK's own retries are off: the task's ``retry=`` decides whether to try again, and an
SDK retrying underneath it would multiply attempts and hide rate limits. Every ``anthropic``
exception is translated to an :class:`AgentBackendError` in :func:`translate_error`, the one
boundary; ``ERROR_KINDS`` names each exception class and a test keeps it complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from async_pipeline.agents.backends import AgentBackendError, AgentReply
from async_pipeline.core.model import AgentProfile

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import Message, MessageParam

__all__ = [
    "API_KEY_VAR",
    "BASE_URL_VAR",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TIMEOUT_MS",
    "ERROR_KINDS",
    "AnthropicBackend",
    "error_kind",
    "translate_error",
]

API_KEY_VAR = "ANTHROPIC_API_KEY"
BASE_URL_VAR = "ANTHROPIC_BASE_URL"
# Passed explicitly even when the task env has no override: left to itself the SDK would
# read ANTHROPIC_BASE_URL from the process environment, which the task env may not contain.
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 4096
# The SDK's own bound for a non-streaming call; given explicitly because an SDK left at its
# default refuses large max_tokens without streaming, which would be a surprise at run time.
DEFAULT_TIMEOUT_MS = 10 * 60 * 1000
_MAX_MESSAGE = 500

# Each exception class of the SDK, by name (names survive SDK versions that add or drop
# classes), and the kind of failure it is. A class missing here falls back to its nearest
# named ancestor; tests/agents/test_anthropic_backend.py fails when the installed SDK exports
# one this table does not name, so a new class is a decision, not an accident.
ERROR_KINDS: Mapping[str, str] = {
    # The bases.
    "AnthropicError": "client",
    "APIError": "api",
    "APIStatusError": "status",
    # Transport: nothing usable came back.
    "APIConnectionError": "connection",
    "APITimeoutError": "timeout",
    "APIResponseValidationError": "invalid_response",
    "APIWebhookValidationError": "invalid_response",
    # 4xx: the request, the key or the account.
    "BadRequestError": "invalid_request",
    "RequestBodyEncodingInvalidError": "invalid_request",
    "RequestBodyEncodingUnsupportedError": "invalid_request",
    "ContentTooLargeError": "invalid_request",
    "RequestTooLargeError": "invalid_request",
    "RequestBodyTooLargeAfterDecodingError": "invalid_request",
    "RequestHeaderFieldsTooLargeError": "invalid_request",
    "UnprocessableEntityError": "invalid_request",
    "ConflictError": "invalid_request",
    "PreconditionFailedError": "invalid_request",
    "AuthenticationError": "auth",
    "PermissionDeniedError": "auth",
    "NotFoundError": "not_found",
    "PaymentRequiredError": "billing",
    "LinkedOrganizationBillingUnavailableError": "billing",
    "LinkedOrganizationSpendLimitReachedError": "billing",
    # 429s that a wait does not cure: a spend limit, not a request rate.
    "ContractSpendLimitReachedError": "billing",
    "EnforcedSpendLimitReachedError": "billing",
    "RateLimitError": "rate_limit",
    "RampLimitExceededError": "rate_limit",
    "OrganizationOnHoldError": "account",
    "OrganizationTypeNotSupportedError": "account",
    "ParentOrganizationRequiredError": "account",
    "WorkspaceHumanReviewDisabledError": "account",
    "ClaudeCodeKeyCreatorNotMemberError": "account",
    "ClaudeCodeVersionTooOldError": "account",
    "SandboxEgressRestrictedError": "account",
    "CMEKKeyDisabledError": "account",
    "CMEKKeyNetworkBlockedError": "account",
    "CMEKKeyUnreachableError": "account",
    "CMEKContextUnavailableError": "account",
    # 5xx and friends: the service, worth a retry= on the task.
    "InternalServerError": "server",
    "HTTPNotImplementedError": "server",
    "GatewayTimeoutError": "server",
    "DeadlineExceededError": "server",
    "RequestTimeoutError": "server",
    "ClientClosedRequestError": "server",
    "ServiceUnavailableError": "overloaded",
    "OverloadedError": "overloaded",
    # Raised by the SDK's own credential loading and retry hooks; this backend passes the key
    # explicitly and retries nothing, so these mean the SDK misbehaved.
    "CredentialsError": "client",
    "IdentityTokenFileError": "client",
    "WorkloadIdentityError": "client",
    "RetryableError": "client",
}

_KIND_TEXT: Mapping[str, str] = {
    "client": "client failed",
    "api": "call failed",
    "status": "answered with an error",
    "connection": "could not be reached",
    "timeout": "did not answer in time",
    "invalid_response": "answered in a shape that is not the Messages API's",
    "invalid_request": "rejected the request as invalid",
    "auth": f"refused the credentials (check {API_KEY_VAR})",
    "not_found": f"found no such resource (check the model and {BASE_URL_VAR})",
    "billing": "refused the request for billing or a spend limit",
    "rate_limit": "rate-limited the request",
    "account": "refused the request for the account's configuration",
    "server": "failed with a server error",
    "overloaded": "is overloaded",
}


class AnthropicBackend:
    """Sends a prompt to the Anthropic Messages API; implements ``AgentBackend``."""

    async def complete(
        self,
        *,
        prompt: str,
        model: str,
        profile: AgentProfile,
        env: Mapping[str, str],
        timeout_ms: int | None,
    ) -> AgentReply:
        """One non-streaming Messages API call; the reply is its text blocks, joined.

        Raises :class:`AgentBackendError`: ENV_MISSING without a key, TASK_TIMEOUT past
        ``timeout_ms``, AGENT_FAILED for every other failure (with ``response`` set to
        ``{status, type, message}``).
        """
        try:
            import anthropic
        except ImportError:
            raise AgentBackendError(
                "ASYNC_PIPELINE_AGENT_FAILED",
                "the anthropic API backend needs the anthropic package: "
                "pip install 'async-pipeline[anthropic]'",
            ) from None
        key = env.get(API_KEY_VAR, "")
        if not key:
            raise AgentBackendError(
                "ASYNC_PIPELINE_ENV_MISSING",
                f"the anthropic API backend needs {API_KEY_VAR} in the task's env; declare it "
                f'with env={{"{API_KEY_VAR}": env.secret("...")}} on the pipeline, job or task',
            )
        base_url = env.get(BASE_URL_VAR) or DEFAULT_BASE_URL
        max_tokens = profile.max_tokens or DEFAULT_MAX_TOKENS
        budget_ms = timeout_ms if timeout_ms is not None else DEFAULT_TIMEOUT_MS
        messages: list[MessageParam] = [{"role": "user", "content": prompt}]
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        message: Message | None = None
        try:
            # The SDK's timeout bounds each phase of the exchange (connect, each read); the
            # cancel scope bounds the whole call, so a server trickling bytes cannot outlast it.
            with anyio.move_on_after(budget_ms / 1000):
                async with anthropic.AsyncAnthropic(
                    api_key=key, base_url=base_url, max_retries=0, timeout=budget_ms / 1000
                ) as client:
                    # Per call as well: a call without its own timeout is where the SDK
                    # computes one from max_tokens, or refuses a large one unstreamed.
                    message = await client.messages.create(
                        model=model,
                        max_tokens=max_tokens,
                        messages=messages,
                        timeout=budget_ms / 1000,
                    )
        except anthropic.AnthropicError as exc:
            # Not chained: a vendor exception's cause (an h11 header error, say) can quote the
            # key, and a logged traceback would carry it.
            raise translate_error(exc, key=key, base_url=base_url, timeout_ms=budget_ms) from None
        if message is None:
            raise _timeout(budget_ms)
        return AgentReply(text=_text(message), request=request, response=_view(message))


def translate_error(
    exc: anthropic.AnthropicError, *, key: str, base_url: str, timeout_ms: int
) -> AgentBackendError:
    """The one place an ``anthropic`` exception becomes an :class:`AgentBackendError`.

    A timeout is TASK_TIMEOUT; every other failure is AGENT_FAILED with ``response`` set to
    ``{status, type, message}`` (plus ``retryAfter`` and ``requestId`` when the API sent
    them). The key is scrubbed from every text, in case a proxy or server echoes it.
    """
    kind = error_kind(type(exc))
    if kind == "timeout":
        return _timeout(timeout_ms)
    status: int | None = getattr(exc, "status_code", None)
    api_type, api_message = _error_fields(getattr(exc, "body", None))
    detail = _scrub(api_message or str(exc), key)[:_MAX_MESSAGE]
    response: dict[str, Any] = {
        "status": status,
        "type": api_type or f"{kind}_error",
        "message": detail,
    }
    http = getattr(exc, "response", None)
    headers: Mapping[str, str] = getattr(http, "headers", None) or {}
    retry_after = headers.get("retry-after")
    request_id = headers.get("request-id")
    if status is None:
        where = f" at {_endpoint(base_url)}"
        label = ""
    else:
        where = ""
        label = f" (HTTP {status}{', ' + api_type if api_type else ''})"
    text = f"Anthropic API{where} {_KIND_TEXT[kind]}{label}: {detail}"
    if retry_after:
        text += f"; retry after {_scrub(retry_after, key)} s"
        response["retryAfter"] = _scrub(retry_after, key)
    if request_id:
        response["requestId"] = _scrub(request_id, key)
    return AgentBackendError("ASYNC_PIPELINE_AGENT_FAILED", text, response=response)


def error_kind(cls: type[BaseException]) -> str:
    """The ``ERROR_KINDS`` entry of ``cls``, or of its nearest named ancestor."""
    for ancestor in cls.__mro__:
        kind = ERROR_KINDS.get(ancestor.__name__)
        if kind is not None and ancestor.__module__.startswith("anthropic"):
            return kind
    return "client"


def _timeout(timeout_ms: int) -> AgentBackendError:
    return AgentBackendError(
        "ASYNC_PIPELINE_TASK_TIMEOUT",
        f"Anthropic API did not answer within {timeout_ms} ms",
        response={"status": None, "type": "timeout_error", "message": "timed out"},
    )


def _error_fields(body: object) -> tuple[str | None, str | None]:
    """``error.type`` and ``error.message`` from an API error body, when it has that shape."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    return (
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
    )


def _scrub(text: str, key: str) -> str:
    return text.replace(key, "[redacted]") if key else text


def _endpoint(base_url: str) -> str:
    """Scheme, host and port only: a base URL's userinfo or query may hold credentials."""
    parts = urlsplit(base_url)
    if not parts.hostname:
        return "the configured endpoint"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _text(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def _view(message: Message) -> dict[str, Any]:
    """What the transcript keeps of a response: enough to audit it, not the SDK's whole model."""
    return {
        "id": message.id,
        "model": message.model,
        "stop_reason": message.stop_reason,
        "usage": message.usage.model_dump(mode="json", exclude_none=True),
        "content": [
            {"type": "text", "text": block.text} if block.type == "text" else {"type": block.type}
            for block in message.content
        ],
    }
