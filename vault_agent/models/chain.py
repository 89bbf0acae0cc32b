"""Fallback between models: when one is down, rate limited or out of credit, the next one answers.

Auth and bad-request errors are raised at once: they are configuration
problems to fix, and a fallback would hide them. Nor does the chain move on
once text has been streamed to the user (the answer would be printed twice).
After a fallback the chain stays on the model that answered, so the rest of
the run does not pay the failing model's retries again on every call.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Completion, CompletionRequest, Model, ModelBillingError, ModelError, OnText
from .retry import StreamGuard

_WHY = {"rate_limited": "rate limited", "timeout": "timed out", "bad_response": "sent an unreadable answer",
        "billing": "out of credit", "unavailable": "unavailable"}


def _label(model: Model) -> str:
    return f"{model.provider}:{model.model}"


def _reason(failed: Model, exc: ModelError, nxt: Model) -> str:
    why = _WHY.get(exc.kind, exc.kind.replace("_", " "))
    status = f" (HTTP {exc.status})" if exc.status else ""
    return f"{_label(failed)} {why}{status} -> {_label(nxt)}"


class FallbackChain:
    """Models tried in order; reports the first model as its own provider and model."""

    def __init__(self, models: list[Model],
                 on_fallback: Callable[[Model, ModelError, Model], None] | None = None) -> None:
        if not models:
            raise ValueError("a fallback chain needs at least one model")
        self.models = list(models)
        self.provider = models[0].provider
        self.model = models[0].model
        self.last_model: Model | None = None
        self._on_fallback = on_fallback
        self._start = 0
        self._reason: str | None = None

    def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        guard = StreamGuard(on_text)
        for i in range(self._start, len(self.models)):
            model = self.models[i]
            try:
                completion = model.complete(request, on_text=guard.callback)
            except ModelError as exc:
                movable = exc.retryable or isinstance(exc, ModelBillingError)
                if i + 1 == len(self.models) or not movable or guard.streamed:
                    raise
                nxt = self.models[i + 1]
                reason = _reason(model, exc, nxt)
                self._reason = f"{self._reason}; {reason}" if self._reason else reason
                self._start = i + 1
                if self._on_fallback is not None:
                    self._on_fallback(model, exc, nxt)
                continue
            self.last_model = model
            if i > 0:
                completion.fallback_reason = self._reason
            return completion
        raise AssertionError("unreachable: the last model either answers or raises")
