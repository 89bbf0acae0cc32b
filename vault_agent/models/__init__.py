"""Models: one protocol, provider adapters, retries, fallback, pricing, replay.

Importing this package never imports a provider SDK; the adapters do that when built.
"""

from .anthropic_model import AnthropicModel
from .base import (
    Completion,
    CompletionRequest,
    Message,
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
    SystemBlock,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from .chain import FallbackChain
from .factory import build_model
from .openai_model import OpenAIModel
from .pricing import price_usd, worst_case_usd
from .replay import ReplayModel, record_transcript
from .retry import RetryingModel

__all__ = [
    "AnthropicModel", "Completion", "CompletionRequest", "FallbackChain", "Message", "Model", "ModelAuthError",
    "ModelBadRequest", "ModelBillingError", "ModelError", "ModelRateLimited", "ModelResponseError", "ModelTimeout",
    "ModelUnavailable", "OnText", "OpenAIModel", "ReplayModel", "RetryingModel", "SystemBlock", "ToolCall",
    "ToolResult", "ToolSpec", "Usage", "build_model", "price_usd", "record_transcript", "worst_case_usd",
]
