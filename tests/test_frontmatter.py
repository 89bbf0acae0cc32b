"""The frontmatter fast path must agree with PyYAML on everything it accepts."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_agent.errors import ConfigError
from vault_agent.vault import frontmatter
from vault_agent.vault.frontmatter import _fast_parse

WORDS = st.sampled_from([
    "plain", "Two words", "yes", "No", "on", "OFF", "true", "null", "~", "0", "7", "012", "1.5", "1e3",
    "2026-11-21", "2026-13-01", "2026-11-21T08:00:00", "-3", "+4", ".5", "1_000", "0x1F", "1:20",
    "a: b", "a #b", "#tag", "it's", '"quoted"', "'single'", '"has \\" esc"', "[x]", "{y}", "a, b",
    "東京デザイン週間", "Café crème", "emoji 🙂", "trailing:", "- dash", "*star", "&anchor", "!tag", "%p",
    "@at", "`tick`", "=", "<<", "?q", "|", ">", "", "key=value", "a[b]", "x:y", "NaN", ".inf",
])
KEYS = st.sampled_from(["type", "name", "description", "tags", "created", "x-custom", "yes", "null",
                        "on", "a_b", "Upper"])


@st.composite
def frontmatter_texts(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        key = draw(KEYS)
        shape = draw(st.sampled_from(["scalar", "flow", "block", "empty"]))
        if shape == "scalar":
            lines.append(f"{key}: {draw(WORDS)}")
        elif shape == "flow":
            items = draw(st.lists(WORDS, max_size=4))
            lines.append(f"{key}: [{', '.join(items)}]")
        elif shape == "block":
            lines.append(f"{key}:")
            indent = draw(st.sampled_from(["", "  ", "    "]))
            lines.extend(f"{indent}- {w}" for w in draw(st.lists(WORDS, max_size=3)))
        else:
            lines.append(f"{key}:")
    return "\n".join(lines) + "\n"


def _yaml(text: str):
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return "error"
    if data is None:
        return {}
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else "error"


@settings(max_examples=3000, deadline=None)
@given(frontmatter_texts())
def test_fast_path_agrees_with_pyyaml_whenever_it_answers(text: str) -> None:
    fast = _fast_parse(text)
    if fast is None:
        return
    assert fast == _yaml(text)
    for key, value in fast.items():
        assert type(value) is type(_yaml(text)[key])


def test_fast_path_handles_the_common_note_shape() -> None:
    text = ("type: project\nname: Launch\ndescription: Weekly newsletter\ntags: [a, b]\n"
            "created: 2026-11-01\nconfidence: 0.8\npinned: true\nsources:\n  - journal/x.md\n")
    assert _fast_parse(text) == {
        "type": "project", "name": "Launch", "description": "Weekly newsletter", "tags": ["a", "b"],
        "created": dt.date(2026, 11, 1), "confidence": 0.8, "pinned": True, "sources": ["journal/x.md"],
    }


def test_split_separates_properties_from_body() -> None:
    fm, body = frontmatter.split("---\na: 1\n---\n# Title\n")
    assert fm == "a: 1\n" and body == "# Title\n"
    assert frontmatter.split("# no properties\n") == (None, "# no properties\n")


def test_unclosed_frontmatter_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="never closed"):
        frontmatter.split("---\na: 1\nno end\n")


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match="line 3"):
        frontmatter.parse("a: 1\nb: c: d\n")  # file line 3: the "---" line is line 1


@pytest.mark.parametrize("line", ["updated: 2026-02-30", "updated: 2026-02-29", "updated: 2026-13-45",
                                  "updated: 0000-01-01", "updated: 2026-01-01T25:00:00", "x: 0x_", "x: !!int abc",
                                  "x: !!float abc", "x: !!timestamp 2026-99-99", "x: !!timestamp 99999-01-01",
                                  "x: [a, !!int abc]"])
def test_a_value_yaml_cannot_build_is_a_frontmatter_error_naming_its_line(line: str) -> None:
    with pytest.raises(frontmatter.FrontmatterError) as err:
        frontmatter.parse(f"type: decision\n{line}\n")
    assert f"line 3 ({line!r})" in err.value.message and "YYYY-MM-DD" in (err.value.fix or "")


def test_frontmatter_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(ConfigError, match="key: value"):
        frontmatter.parse("- just\n- a list\n")


def test_render_then_parse_round_trips_unicode_dates_and_key_order() -> None:
    data = {"zeta": 1, "name": "東京デザイン週間", "created": dt.date(2026, 11, 2), "tags": ["a", "é"],
            "nested": {"k": [1, 2]}}
    fm, body = frontmatter.split(frontmatter.render(data, "body\n"))
    parsed = frontmatter.parse(fm)
    assert parsed == data and list(parsed) == list(data) and body == "body\n"
    assert "東京" in frontmatter.dump(data)  # written as letters, not \u escapes


def test_a_value_used_twice_is_written_twice_not_as_a_yaml_anchor() -> None:
    day = dt.date(2026, 11, 21)
    text = frontmatter.dump({"created": day, "updated": day, "tags": (tags := ["a"]), "more": tags})
    assert "&" not in text and "*" not in text
    assert "created: 2026-11-21\nupdated: 2026-11-21\n" in text
