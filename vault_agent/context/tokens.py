"""Token estimates and budget-bounded truncation, without a tokenizer dependency.

The estimate is UTF-8 bytes / 3.5, rounded up: ~14% above the usual 4 chars a
token for English and close to 1 token a character for CJK text, so budgets
err on the safe side for every script. Providers report exact counts after a
call; the estimate only has to keep the prompt inside its budget.
"""

from __future__ import annotations


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    return (len(text.encode("utf-8")) * 2 + 6) // 7


def truncate_to_tokens(text: str, budget: int, marker: str = "\n[… cut to fit the context budget]") -> str:
    """The longest prefix of `text` (cut at a line break when possible) that fits `budget` with the marker."""
    if estimate_tokens(text) <= budget:
        return text
    room = budget - estimate_tokens(marker)
    if room <= 0:
        return ""
    max_bytes = room * 7 // 2
    cut = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    newline = cut.rfind("\n")
    if newline > len(cut) // 2:
        cut = cut[:newline]
    while cut and estimate_tokens(cut + marker) > budget:
        cut = cut[:-1]
    return cut + marker
