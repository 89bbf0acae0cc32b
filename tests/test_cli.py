"""The command line, run as a real subprocess: one-line errors, exit codes, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from memory_helpers import damage


def cli(*args: str, vault: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), *args],
                          capture_output=True, text=True, env=full_env, timeout=60)


def test_init_list_notes_and_doctor_work_together(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    made = cli("init", "helper", "--template", "assistant", vault=vault)
    assert made.returncode == 0, made.stderr
    assert cli("list", vault=vault).stdout.split() == ["helper"]
    assert json.loads(cli("list", "--json", vault=vault).stdout)["agents"] == ["helper"]
    notes = cli("notes", "helper", "--json", vault=vault)
    assert notes.returncode == 0 and isinstance(json.loads(notes.stdout), list)
    keyed = cli("doctor", "helper", vault=vault, env={"ANTHROPIC_API_KEY": "sk-ant-secret-value"})
    assert "sk-ant-secret-value" not in keyed.stdout + keyed.stderr
    assert keyed.returncode == 0, keyed.stdout
    missing = cli("doctor", "helper", vault=vault)
    assert missing.returncode == 1
    assert "ANTHROPIC_API_KEY, which is not set" in missing.stdout
    assert missing.stdout.strip().splitlines()[-1].startswith("doctor: agent helper: 1 error(s)")


def test_init_refuses_an_existing_agent_and_a_bad_name_in_one_line(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert cli("init", "helper", vault=vault).returncode == 0
    again = cli("init", "helper", vault=vault)
    bad = cli("init", "Bad Name", vault=vault)
    unknown = cli("init", "x", "--template", "nope", vault=vault)
    for result in (again, bad, unknown):
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "already exists" in again.stderr and "invalid agent name" in bad.stderr
    assert "unknown template 'nope'" in unknown.stderr and "assistant" in unknown.stderr


def test_list_doctor_and_run_leave_out_a_misnamed_agent_folder_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "one" / "persona").mkdir(parents=True)
    (tmp_path / "My Agent").mkdir()
    (tmp_path / "My Agent" / "model.md").write_text("---\nprovider: replay\n---\n")
    warning = f"WARNING {tmp_path / 'My Agent'}: 'My Agent' is not a valid agent name, so this agent is left out " \
              "— fix: rename the folder to my-agent (1-63 lowercase letters, digits, '-' or '_', starting with a " \
              "letter or digit)\n"
    listed = cli("list", vault=tmp_path)
    assert listed.returncode == 0 and listed.stdout == "one\n" and listed.stderr == warning
    doctor = cli("doctor", vault=tmp_path)
    assert doctor.returncode != 2 and "invalid agent name" not in doctor.stderr
    assert "WARNING My Agent: 'My Agent' is not a valid agent name, so this agent is left out" in doctor.stdout


def test_unknown_agent_is_a_one_line_error_with_the_fix(tmp_path: Path) -> None:
    result = cli("notes", "ghost", vault=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "vault-agent init ghost" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_whose_vault_agent_is_a_file_is_one_line_saying_to_move_it_aside(tmp_path: Path) -> None:
    import shutil

    vault = tmp_path / "vault"
    assert cli("init", "helper", vault=vault).returncode == 0
    state = vault / "helper" / ".vault-agent"
    shutil.rmtree(state)
    state.write_text("a person's file")
    result = cli("run", "helper", "-m", "hello", vault=vault, env={"ANTHROPIC_API_KEY": "x"})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: {state}: not a folder (fix: move this file aside: vault-agent makes the " \
                            "folder anew and keeps its index and locks in it)\n"
    assert state.read_text() == "a person's file"
    # The log's appends need the write lock that folder holds: the run stops before it starts, without a record.
    assert not list((vault / "helper" / "log").rglob("*.jsonl"))

def test_doctor_reports_a_malformed_model_md_with_file_and_fix(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    cli("init", "helper", vault=vault)
    (vault / "helper" / "model.md").write_text("---\nprovider: [broken\n---\n")
    result = cli("doctor", "helper", vault=vault)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("ERROR"))
    assert "model.md" in line and "invalid YAML" in line and "fix:" in line


def test_doctor_names_a_damaged_search_index_and_the_next_command_reading_it_rebuilds_it(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    cli("init", "helper", vault=vault)
    for i in range(30):
        (vault / "helper" / "memory" / f"n{i}.md").write_text(f"---\ntype: user\nname: N{i}\n---\nBody {i}.\n")
    assert cli("index", "helper", vault=vault).returncode == 0
    damage(vault / "helper" / ".vault-agent" / "index.db", "notes")
    doctor = cli("doctor", "helper", vault=vault, env={"ANTHROPIC_API_KEY": "x"})
    [line] = [l for l in doctor.stdout.splitlines() if "index.db" in l]
    assert line.startswith("WARNING [helper] .vault-agent/index.db: the search index is damaged (Page ")
    assert line.endswith("fix: run: vault-agent index helper --rebuild (it is built again from the files)")
    notes = cli("notes", "helper", "--json", vault=vault)
    assert notes.returncode == 0 and len(json.loads(notes.stdout)) == 30, notes.stderr
    assert "index.db" not in cli("doctor", "helper", vault=vault, env={"ANTHROPIC_API_KEY": "x"}).stdout


def test_doctor_fix_writes_a_missing_index(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    cli("init", "helper", vault=vault)
    memory = vault / "helper" / "memory"
    (memory / "INDEX.md").unlink()
    (memory / "tea.md").write_text("---\ntype: user\nname: Tea\ndescription: Likes green tea\n---\n")
    before = cli("doctor", "helper", vault=vault, env={"ANTHROPIC_API_KEY": "x"})
    assert "INDEX.md missing" in before.stdout
    fixed = cli("doctor", "helper", "--fix", vault=vault, env={"ANTHROPIC_API_KEY": "x"})
    assert "fixed:" in fixed.stdout and "- [[tea|Tea]] — Likes green tea" in (memory / "INDEX.md").read_text()
    assert "INDEX" not in fixed.stdout.split("fixed:")[-1].split("\n", 1)[1]


@pytest.mark.parametrize("module", ["anthropic", "openai", "jinja2", "markdown_it", "numpy", "torch"])
def test_help_imports_no_heavy_package(module: str) -> None:
    code = ("import sys, runpy; sys.argv=['vault-agent','--help']\n"
            "try:\n runpy.run_module('vault_agent.cli', run_name='__main__')\n"
            "except SystemExit: pass\n"
            f"print({module!r} in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False"
