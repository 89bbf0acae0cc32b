"""What a model call costs in USD: model.md's price table first, then the genai-prices package, else unknown.

Unknown is None, never a guess: a cost guard must be able to tell "free" from
"we do not know". Rules:

- A `prices:` entry in model.md (keyed by model name) always wins; it also
  covers the dated snapshot a provider reports as the answering model
  (`claude-sonnet-4-5` prices `claude-sonnet-4-5-20250929`). Cache
  tokens without their own price are charged at the input price, which can
  only overestimate.
- Otherwise genai-prices prices it (current prices, tiers included), with our
  provider names mapped to its ids. Local servers (ollama, lmstudio, ...) and
  models it does not list give None; give them a table entry (zeros for a free
  local model) to make them count.
- Replay runs spend nothing but are not "free models" either: they give None
  unless the table has an entry for the transcript's model, which lets demos
  and tests exercise cost caps offline with deterministic prices. genai-prices
  is never asked about a replay, so a recording never bills real-world prices.
"""

from __future__ import annotations

import re

from ..vault.config import Prices
from .base import Usage

# Our provider names that genai-prices spells differently; the rest (anthropic, openai, groq, ...) match.
_GENAI_PROVIDER = {"gemini": "google"}
_PER_TOKEN = 1_000_000
# A snapshot date after the name: -20250929 (Anthropic) or -2024-07-18 (OpenAI); never gpt-4o for gpt-4o-mini.
_SNAPSHOT = re.compile(r"-\d{4}-?\d{2}-?\d{2}")


def price_usd(provider: str, model: str, usage: Usage, table: dict[str, Prices] | None = None) -> float | None:
    """USD for one call's usage, or None when nobody knows the model's price."""
    entry = _table_entry(model, table) if table else None
    if entry is not None:
        return _table_price(entry, usage)
    if provider == "replay":
        return None
    return _genai_price(provider, model, usage)


def worst_case_usd(provider: str, model: str, input_tokens_estimate: int, max_output_tokens: int,
                   table: dict[str, Prices] | None = None) -> float | None:
    """The most a call can cost: every input token uncached and the full output limit used; None if unknown."""
    return price_usd(provider, model, Usage(input_tokens=input_tokens_estimate, output_tokens=max_output_tokens),
                     table)


def _table_entry(model: str, table: dict[str, Prices]) -> Prices | None:
    if model in table:
        return table[model]
    for name, prices in table.items():
        if model.startswith(name) and _SNAPSHOT.fullmatch(model[len(name):]):
            return prices
    return None


def _table_price(p: Prices, u: Usage) -> float:
    cache_read = p.cache_read if p.cache_read is not None else p.input
    cache_write = p.cache_write if p.cache_write is not None else p.input
    return (u.input_tokens * p.input + u.output_tokens * p.output + u.cache_read_tokens * cache_read
            + u.cache_write_tokens * cache_write) / _PER_TOKEN


def _genai_price(provider: str, model: str, u: Usage) -> float | None:
    try:
        import genai_prices
    except ImportError:
        return None
    # genai-prices counts input_tokens as the whole prompt, cache reads and writes included.
    usage = genai_prices.Usage(input_tokens=u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
                               output_tokens=u.output_tokens, cache_read_tokens=u.cache_read_tokens,
                               cache_write_tokens=u.cache_write_tokens)
    try:
        calc = genai_prices.calc_price(usage, model, provider_id=_GENAI_PROVIDER.get(provider, provider))
    except LookupError:
        return None
    return float(calc.total_price)
