"""Recall words: one short model call that turns a work item into the words its notes are likely to use.

Recall is a keyword search, and a person asks in other words than the note
they wrote ("Who looks after my teeth?" for a note about a dentist). With
`recall_words: true` in model.md the run first asks its model for search
words (`INSTRUCTION`, the work item as the only message, nothing from the
vault), and recall and the INDEX view rank by those words instead of the work
item's. The call goes through the same cost caps, leak scan and accounting
as the run's other calls; when it fails or a cap refuses it, recall uses the
work item's own words, as it does without the setting.
"""

from __future__ import annotations

import re

from ..models.base import CompletionRequest, Message, SystemBlock
from ..vault.config import ModelConfig

INSTRUCTION = (
    "You choose the words a keyword search of a person's notes should use for the work item you are given. "
    "The notes were written at other times and in other words: a note about a dentist may never say \"teeth\". "
    "Write one line of 3 to 12 search words: the work item's key words, then the words its notes are likely "
    "to use instead: the everyday and the technical name of the thing, the person, place, organisation or tool "
    "it involves, what it is for. Only the words: no sentence, no explanation, no quotes."
)
MAX_OUTPUT_TOKENS = 64
# A reply is cut to this many words, so that a model that writes a paragraph does not make recall rank by it.
MAX_WORDS = 24
MAX_CHARS = 300
_LEADS = re.compile(r"^\s*(?:[-*•>]+\s*|(?:search\s+)?(?:words|keywords|terms|query)\s*:\s*)", re.IGNORECASE)


def request(work_item: str, config: ModelConfig) -> CompletionRequest:
    """The call: INSTRUCTION, then the work item as the only message; no tools, a short answer."""
    return CompletionRequest([SystemBlock(INSTRUCTION)], [Message("user", work_item)], [],
                             min(MAX_OUTPUT_TOKENS, config.max_output_tokens), config.temperature, config.timeout_s)


def words_from(reply: str) -> str:
    """The search words in a reply: its lines joined, list marks, a "Keywords:" lead-in and quotes dropped,
    cut to MAX_WORDS words and MAX_CHARS characters; "" when nothing is left."""
    lines = (_LEADS.sub("", line) for line in reply.splitlines())
    words = " ".join(" ".join(lines).replace('"', " ").replace("“", " ").replace("”", " ").split()[:MAX_WORDS])
    return words[:MAX_CHARS].rsplit(" ", 1)[0] if len(words) > MAX_CHARS else words
