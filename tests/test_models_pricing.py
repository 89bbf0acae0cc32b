"""Pricing: model.md's table first, then genai-prices, else unknown (None), never a guess."""

from __future__ import annotations

import pytest

from vault_agent.models import Usage, price_usd, worst_case_usd
from vault_agent.vault.config import Prices

TABLE = {"my-model": Prices(input=2.0, output=10.0, cache_read=0.2)}


def test_table_entry_prices_each_token_bucket() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=500_000, cache_write_tokens=10)
    # cache writes have no price of their own here: charged as input, which can only overestimate
    assert price_usd("openai", "my-model", usage, TABLE) == pytest.approx(2.0 + 1.0 + 0.1 + 10 * 2.0 / 1e6)


@pytest.mark.parametrize("answered,priced", [("my-model-20250929", True), ("my-model-2024-07-18", True),
                                              ("my-model-mini", False), ("my-model-mini-2024-07-18", False)])
def test_table_entry_covers_dated_snapshots_of_its_model_only(answered: str, priced: bool) -> None:
    cost = price_usd("openai", answered, Usage(1_000_000, 0), TABLE)
    assert (cost == 2.0) if priced else (cost is None)


def test_table_entry_wins_over_the_pricing_package() -> None:
    table = {"gpt-4o-mini": Prices(input=0.0, output=0.0)}
    assert price_usd("openai", "gpt-4o-mini", Usage(1000, 1000), table) == 0.0


@pytest.mark.parametrize("provider,model", [("anthropic", "claude-sonnet-5"), ("openai", "gpt-4o-mini"),
                                            ("gemini", "gemini-2.0-flash")])
def test_well_known_models_get_a_positive_price(provider: str, model: str) -> None:
    cost = price_usd(provider, model, Usage(input_tokens=1000, output_tokens=100))
    assert cost is not None and cost > 0


def test_cache_reads_are_cheaper_than_uncached_input() -> None:
    uncached = price_usd("anthropic", "claude-sonnet-5", Usage(input_tokens=10_000))
    cached = price_usd("anthropic", "claude-sonnet-5", Usage(cache_read_tokens=10_000))
    assert uncached is not None and cached is not None and 0 < cached < uncached


@pytest.mark.parametrize("provider,model", [("openai", "no-such-model-xyz"), ("ollama", "llama3.2")])
def test_unknown_model_price_is_none(provider: str, model: str) -> None:
    assert price_usd(provider, model, Usage(1000, 100)) is None


def test_replay_costs_none_unless_the_table_prices_the_recorded_model() -> None:
    assert price_usd("replay", "claude-sonnet-5", Usage(1000, 100)) is None
    assert price_usd("replay", "my-model", Usage(1_000_000, 0), TABLE) == 2.0


def test_worst_case_is_all_input_uncached_plus_full_output() -> None:
    assert worst_case_usd("openai", "my-model", 1_000_000, 1_000_000, TABLE) == pytest.approx(12.0)
    assert worst_case_usd("openai", "no-such-model-xyz", 1000, 1000) is None
    worst = worst_case_usd("anthropic", "claude-sonnet-5", 10_000, 4096)
    typical = price_usd("anthropic", "claude-sonnet-5", Usage(input_tokens=2_000, output_tokens=100,
                                                                cache_read_tokens=8_000))
    assert worst is not None and typical is not None and worst > typical
