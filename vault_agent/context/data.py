"""Untrusted text inside the prompt's data tags (<note>, <journal>), unable to close them.

The instructions tell the model that text inside these tags is data. A note
whose body holds `</note>` would end its tag early, and whatever follows (a
forged "# Tools" section) would read as the runtime's own words. Every closing
tag of that name inside the text is written `<\\/note>` instead: one character
more, the same meaning to a reader, and no longer a tag.
"""

from __future__ import annotations

import re

_CLOSING = re.compile(r"</(?=\s*(?:note|journal)\b)", re.IGNORECASE)


def inert(text: str) -> str:
    """`text` with every closing </note> or </journal> tag made plain text."""
    return _CLOSING.sub(r"<\\/", text) if "</" in text else text
