"""Transient model failures: which HTTP answers are worth retrying, how long to wait, when to give up.

The adapters turn an HTTP status into a ModelError with `status_error` (so both
providers classify failures the same way); `RetryingModel` then retries the
retryable ones.

Waiting: a Retry-After from the provider is honoured, capped at `max_delay_s`;
a Retry-After beyond twice `max_delay_s` means "come back in minutes", so the
error is raised at once instead of blocking the run (a fallback model, if any,
takes over). Without Retry-After the wait is exponential backoff with full
jitter: uniform(0, min(max_delay_s, base_delay_s * 2**attempt)).
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from .base import (
    Completion,
    CompletionRequest,
    Model,
    ModelAuthError,
    ModelBadRequest,
    ModelBillingError,
    ModelError,
    ModelRateLimited,
    ModelResponseError,
    ModelTimeout,
    ModelUnavailable,
    OnText,
)

# OpenAI reports an exhausted balance as 429 insufficient_quota; Anthropic as 400 "credit balance is too low".
_BILLING = re.compile(r"credit|billing|insufficient_quota|exceeded your current quota|payment", re.I)
# Provider messages sometimes echo a masked key ("Incorrect API key provided: sk-ab***yz").
_KEYLIKE = re.compile(r"\b(?:sk|key|api)[-_][A-Za-z0-9_*.-]{6,}", re.I)
_DETAIL_MAX = 200


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from retry-after-ms or retry-after (seconds or an HTTP date); None when absent or unreadable."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def is_transport_error(exc: BaseException) -> bool:
    """A connection dropped mid-stream surfaces as the HTTP library's own error, not the SDK's."""
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")


def error_detail(body: object, fallback: str, secret: str | None = None) -> str:
    """The provider's error message from an error body, safe for a one-line message: no key, bounded length."""
    text = fallback
    if isinstance(body, str):
        text = body
    elif isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            text = inner["message"]
        elif isinstance(body.get("message"), str):
            text = body["message"]
    if secret:
        text = text.replace(secret, "***")
    text = _KEYLIKE.sub("***", " ".join(text.split()))
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 3] + "..."


def status_error(status: int, detail: str, headers: Mapping[str, str] | None, *, provider: str, model: str,
                 key_env: str | None) -> ModelError:
    """The ModelError for an HTTP error status; `detail` is the provider's (already one-line) message."""
    label = f"{provider}:{model}"
    said = f": {detail}" if detail else ""
    wait: float | None = None
    cls: type[ModelError]
    if status < 400:  # an error event inside a 200 stream, e.g. overloaded halfway through an answer
        cls, fix = ModelUnavailable, "run again later, or configure a fallback in model.md"
        text = f"{label} failed while answering{said}"
    elif status in (401, 403):
        cls = ModelAuthError
        key_fix = f"check {key_env}" if key_env else "check the server's API key settings"
        if status == 401:
            text, fix = f"{label} rejected the API key (HTTP 401)", key_fix
        else:
            text, fix = f"{label} denied access (HTTP 403){said}", f"{key_fix} and that the key may use this model"
    elif status == 402 or (status in (400, 429) and _BILLING.search(detail)):
        cls, fix = ModelBillingError, "add credit or raise the spending limit in the provider's console"
        text = f"{label} refused the call for billing reasons (HTTP {status}){said}"
    elif status == 429:
        wait = retry_after_s(headers)
        hint = f", retry after {wait:g} s" if wait is not None else ""
        cls, fix = ModelRateLimited, "wait and run again, or configure a fallback in model.md"
        text = f"{label} is rate limited (HTTP 429{hint})"
    elif status == 408:
        cls, text, fix = ModelTimeout, f"{label} timed out on the provider's side (HTTP 408)", "run again"
    elif status >= 500 or status == 409:
        what = "is overloaded" if status == 529 else "is unavailable"
        cls, fix = ModelUnavailable, "run again later, or configure a fallback in model.md"
        text = f"{label} {what} (HTTP {status}){said}"
    elif status == 404:
        cls, fix = ModelBadRequest, "check model and base_url in model.md"
        text = f"{label} was not found (HTTP 404){said}"
    elif status == 413:
        cls, fix = ModelBadRequest, "lower context_window in model.md"
        text = f"{label} refused the request as too large (HTTP 413){said}"
    else:
        cls, fix = ModelBadRequest, "check model.md settings; report a bug if they look right"
        text = f"{label} refused the request (HTTP {status}){said}"
    return cls(text, provider=provider, model=model, status=status, retry_after_s=wait, fix=fix)


def map_sdk_error(sdk: Any, exc: Exception, *, provider: str, model: str, api_key: str | None,
                  key_env: str | None, timeout_s: float, api_name: str) -> ModelError | None:
    """One ModelError for an exception of either SDK (both generate the same exception classes)."""
    label = f"{provider}:{model}"

    def error(cls: type[ModelError], what: str, fix: str) -> ModelError:
        return cls(f"{label} {what}", provider=provider, model=model, fix=fix)

    if isinstance(exc, (json.JSONDecodeError, sdk.APIResponseValidationError)):
        return error(ModelResponseError, "sent a response that is not valid JSON",
                     f"run again; if it persists, check base_url points at {api_name}")
    if isinstance(exc, sdk.APITimeoutError):
        return error(ModelTimeout, f"did not answer within {timeout_s:g} s", "run again, or raise timeout_s in model.md")
    if isinstance(exc, sdk.APIConnectionError) or is_transport_error(exc):
        return error(ModelUnavailable, f"could not be reached ({type(exc).__name__})",
                     "check the network and base_url (is the server running?), then run again")
    if isinstance(exc, sdk.APIStatusError):
        return status_error(exc.status_code, error_detail(exc.body, exc.message, api_key), exc.response.headers,
                            provider=provider, model=model, key_env=key_env)
    if isinstance(exc, sdk.APIError):  # an error event inside a 200 stream
        return status_error(200, error_detail(exc.body, exc.message, api_key), None, provider=provider,
                            model=model, key_env=key_env)
    return None


class StreamGuard:
    """Wraps on_text and remembers whether any text reached the user (after which a retry would repeat it)."""

    def __init__(self, on_text: OnText | None) -> None:
        self._on_text = on_text
        self.streamed = False

    @property
    def callback(self) -> OnText | None:
        return self._forward if self._on_text is not None else None

    def _forward(self, piece: str) -> None:
        if piece:
            self.streamed = True
        assert self._on_text is not None
        self._on_text(piece)


_NEVER_RETRIED = (ModelAuthError, ModelBillingError, ModelBadRequest)


class RetryingModel:
    """Retries an inner model's retryable errors with backoff; see the module docstring for the waits."""

    def __init__(self, inner: Model, *, max_retries: int, base_delay_s: float = 0.5, max_delay_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[ModelError, int, float], None] | None = None) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.max_retries = max_retries
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._sleep = sleep
        self._on_retry = on_retry

    def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        guard = StreamGuard(on_text)
        attempt = 0
        while True:
            try:
                return self.inner.complete(request, on_text=guard.callback)
            except ModelError as exc:
                if (isinstance(exc, _NEVER_RETRIED) or not exc.retryable or guard.streamed
                        or attempt >= self.max_retries):
                    raise
                delay = self._delay(exc, attempt)
                attempt += 1
                if self._on_retry is not None:
                    self._on_retry(exc, attempt, delay)
                self._sleep(delay)

    def _delay(self, exc: ModelError, attempt: int) -> float:
        if exc.retry_after_s is not None:
            if exc.retry_after_s > 2 * self.max_delay_s:
                raise exc
            return min(exc.retry_after_s, self.max_delay_s)
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** attempt))
