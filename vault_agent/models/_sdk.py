"""What the two SDK adapters share: the lazy SDK import, the model's identity, and one error mapping."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable, TypeVar

from ..errors import ConfigError
from ..vault.config import ModelRef
from .retry import map_sdk_error

T = TypeVar("T")


class SdkAdapter:
    """Base of AnthropicModel and OpenAIModel; subclasses set `sdk_name` and `api_name`."""

    sdk_name = ""
    api_name = ""

    def __init__(self, ref: ModelRef, *, api_key: str | None, timeout_s: float) -> None:
        try:
            # Imported here, not at module level: `import anthropic` alone costs about a second.
            self._sdk: ModuleType = importlib.import_module(self.sdk_name)
        except ImportError:
            raise ConfigError(f"{ref.label()} needs the {self.sdk_name} package",
                              fix=f"pip install {self.sdk_name}") from None
        self.provider = ref.provider
        self.model = ref.model
        self.timeout_s = timeout_s
        self._key_env = ref.key_env()
        self._api_key = api_key

    def _call(self, fn: Callable[[], T], timeout_s: float) -> T:
        """Run one SDK call; its exceptions come out as ModelErrors (unknown ones unchanged)."""
        try:
            return fn()
        except Exception as exc:
            mapped = map_sdk_error(self._sdk, exc, provider=self.provider, model=self.model, api_key=self._api_key,
                                   key_env=self._key_env, timeout_s=timeout_s, api_name=self.api_name)
            if mapped is None:
                raise
            raise mapped from exc
