"""The encrypted secret store, its master key, the `secret` commands, and the leak scan."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vault_agent.cli import main
from vault_agent.security.redact import Redactor
from vault_agent.security.secrets import SecretError, SecretStore, init_store, load_key, store_path

from security_kit import KEY, OTHER_KEY


def cli(vault: Path, env: dict[str, str], *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["--vault", str(vault), *args], env=env, input=input)


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose key file lives in tmp_path/config, outside the vault."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "VAULT_AGENT_MASTER_KEY": ""}


def test_init_makes_a_private_key_file_outside_the_vault_and_an_encrypted_store(tmp_path: Path,
                                                                                 home: dict[str, str]) -> None:
    vault = tmp_path / "vault"
    result = cli(vault, home, "secret", "init")
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "config" / "vault-agent" / "master.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and str(key_file) in result.output
    assert cli(vault, home, "secret", "set", "GITHUB_TOKEN", input="ghp_canary_value_123\n").exit_code == 0
    raw = store_path(vault).read_bytes()
    assert b"ghp_canary_value_123" not in raw and b"GITHUB_TOKEN" not in raw
    assert json.loads(raw)["cipher"] == "AES-256-GCM"
    again = cli(vault, home, "secret", "init")
    assert again.exit_code == 0 and "already there" in again.output


def test_set_get_list_rm_round_trip_and_get_needs_reveal(tmp_path: Path, home: dict[str, str]) -> None:
    vault = tmp_path / "vault"
    cli(vault, home, "secret", "init")
    assert cli(vault, home, "secret", "set", "API_KEY", "--value", "value-one-111").exit_code == 0
    assert cli(vault, home, "secret", "set", "OTHER", input="value-two-222").exit_code == 0
    assert cli(vault, home, "secret", "list").output.split() == ["API_KEY", "OTHER"]
    hidden = cli(vault, home, "secret", "get", "API_KEY")
    assert hidden.exit_code == 2 and "value-one-111" not in hidden.output and "--reveal" in hidden.output
    assert cli(vault, home, "secret", "get", "API_KEY", "--reveal").output == "value-one-111\n"
    assert cli(vault, home, "secret", "rm", "API_KEY").exit_code == 0
    missing = cli(vault, home, "secret", "get", "API_KEY", "--reveal")
    assert missing.exit_code == 2 and "no secret named 'API_KEY'" in missing.output


def test_a_wrong_key_is_a_clear_error_never_garbage(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    init_store(vault, {"VAULT_AGENT_MASTER_KEY": KEY})
    SecretStore.open(vault, {"VAULT_AGENT_MASTER_KEY": KEY}).set("TOKEN", "right-value-1")
    with pytest.raises(SecretError, match="does not open this store"):
        SecretStore.open(vault, {"VAULT_AGENT_MASTER_KEY": OTHER_KEY})
    doc = json.loads(store_path(vault).read_text())
    del doc["key_id"]  # even without the key id, the GCM tag catches the wrong key
    store_path(vault).write_text(json.dumps(doc))
    with pytest.raises(SecretError, match="wrong key, or the file was altered"):
        SecretStore.open(vault, {"VAULT_AGENT_MASTER_KEY": OTHER_KEY})
    result = cli(vault, {"VAULT_AGENT_MASTER_KEY": OTHER_KEY}, "secret", "list")
    assert result.exit_code == 2 and result.output.startswith("error: ") and len(result.output.splitlines()) == 1


def test_a_tampered_store_is_refused(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    env = {"VAULT_AGENT_MASTER_KEY": KEY}
    init_store(vault, env)
    SecretStore.open(vault, env).set("TOKEN", "right-value-1")
    doc = json.loads(store_path(vault).read_text())
    blob = bytearray(base64.b64decode(doc["ciphertext"]))
    blob[3] ^= 1
    doc["ciphertext"] = base64.b64encode(bytes(blob)).decode()
    store_path(vault).write_text(json.dumps(doc))
    with pytest.raises(SecretError, match="altered"):
        SecretStore.open(vault, env)


def test_a_key_file_others_can_read_or_inside_the_vault_is_refused(tmp_path: Path, home: dict[str, str]) -> None:
    vault = tmp_path / "vault"
    cli(vault, home, "secret", "init")
    key_file = tmp_path / "config" / "vault-agent" / "master.key"
    key_file.chmod(0o644)
    with pytest.raises(SecretError, match="read by other users") as info:
        load_key(vault, home)
    assert f"chmod 600 {key_file}" in info.value.one_line()
    inside = vault / "master.key"
    inside.write_text(KEY)
    inside.chmod(0o600)
    with pytest.raises(SecretError, match="inside the vault"):
        load_key(vault, {"VAULT_AGENT_MASTER_KEY_FILE": str(inside)})


def test_no_key_and_malformed_keys_say_how_to_fix(tmp_path: Path, home: dict[str, str]) -> None:
    vault = tmp_path / "vault"
    result = cli(vault, home, "secret", "list")
    assert result.exit_code == 2 and "vault-agent secret init" in result.output
    with pytest.raises(SecretError, match="not 32 bytes of base64"):
        load_key(vault, {"VAULT_AGENT_MASTER_KEY": "too-short"})


def test_names_and_too_short_values_are_refused(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    env = {"VAULT_AGENT_MASTER_KEY": KEY}
    init_store(vault, env)
    store = SecretStore.open(vault, env)
    with pytest.raises(SecretError, match="invalid secret name"):
        store.set("not a name", "value-123")
    with pytest.raises(SecretError, match="at least 6"):
        store.set("PIN", "1234")


# --- the leak scan -------------------------------------------------------------

LEAKS = {
    "openai-key": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "anthropic-key": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx-yz_0123",
    "github-token": "ghp_0123456789abcdefghijABCDEFGHIJ0123456789",
    "slack-token": "xoxb-1234567890-abcdefghijkl",
    "aws-access-key": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "private-key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----",
}


@pytest.mark.parametrize("kind", sorted(LEAKS))
def test_well_known_key_shapes_are_redacted(kind: str) -> None:
    text, found = Redactor().scrub_found(f"config: {LEAKS[kind]} (end)")
    assert LEAKS[kind] not in text and f"[REDACTED:{kind}]" in text and found == [kind]


@pytest.mark.parametrize("line, kept", [
    ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer "),
    ("DB_PASSWORD='s3cr3t-pass'", "DB_PASSWORD='"), ("password: hunter2222", "password: "),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = "),
    ("https://x.example/?token=abc123def456&page=2", "&page=2"),
])
def test_values_in_key_value_form_are_redacted_keeping_the_key(line: str, kept: str) -> None:
    text = Redactor().scrub(line)
    assert "[REDACTED:" in text and kept in text


@pytest.mark.parametrize("text", [
    "2026-11-21T08:05:12.123+01:00 run 20261121T080512-a3f09c finished",
    "sha256 3f0a9c5e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7",
    "max_output_tokens: 4096, token_count: 1234567 and 1,234 tokens in",
    "The password: changed last week. A secretary: Johnathan. Tokens: many.",
    "PWD=/tmp/home HOME=/tmp/home", "{{secret:GITHUB_TOKEN}} is a reference, not a value",
    "$0.0271 · 8,986 in · 745 out · anthropic:claude-sonnet-5 · 13.0 s",
])
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert Redactor().scrub(text) == text


def test_stored_values_are_redacted_also_when_encoded() -> None:
    value = "canary/Zx81+value"
    r = Redactor({"CANARY": value})
    from urllib.parse import quote

    for form in (value, quote(value, safe=""), base64.b64encode(value.encode()).decode().rstrip("=")):
        text, found = r.scrub_found(f"before {form} after")
        assert text == "before [REDACTED:secret:CANARY] after" and found == ["secret:CANARY"]


def test_two_processes_setting_secrets_at_once_both_land(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    vault = tmp_path / "vault"
    vault.mkdir()
    env = {**os.environ, "VAULT_AGENT_MASTER_KEY": KEY}
    init_store(vault, env)
    script = ("import os, sys\nfrom pathlib import Path\nfrom vault_agent.security.secrets import SecretStore\n"
              "s = SecretStore.open(Path(sys.argv[1]), os.environ)\n"
              "for i in range(15):\n    s.set(f'{sys.argv[2]}_{i}', 'value-' + sys.argv[2] * 8)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(vault), name], env=env) for name in ("A", "B")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(SecretStore.open(vault, env).names()) == 30


@pytest.mark.parametrize("kind", [k for k, _, _ in __import__("vault_agent.security.redact", fromlist=["x"]).PATTERNS
                                  if k != "password"])
def test_every_text_a_pattern_matches_holds_the_literal_that_lets_the_pattern_run(kind: str) -> None:
    # The scan skips a pattern when its literal is absent; that must never skip a real match.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from vault_agent.security.redact import _HINTS, PATTERNS

    regex = next(p for k, p, _ in PATTERNS if k == kind)
    literals, folded = _HINTS[kind]

    @settings(max_examples=60, deadline=None)
    @given(st.from_regex(regex, fullmatch=True))
    def check(text: str) -> None:
        haystack = text.lower() if folded else text
        assert any(literal in haystack for literal in literals)

    check()


@pytest.mark.parametrize("text", ["password: hunter2222", "DB_PASSWORD='s3cr3t-pass'", "api_key = abc123456",
                                  "Credentials: 9f8e7d6c", 'secret_access_key: "wJalrXUtnFEMI/K7MDENG"',
                                  "TOKEN=tok_1234567"])
def test_password_shaped_text_is_never_skipped_by_the_fast_check(text: str) -> None:
    from vault_agent.security.redact import _may_hold_password

    assert _may_hold_password(text.lower()) and "[REDACTED:" in Redactor().scrub(text)
