"""The log's hash chain: each line carries the sha256 of the line before it, and `verify` checks it.

Every line appended to an agent's log (run records and tool-call children)
carries `prev_hash`, the sha256 of the previous line's bytes (UTF-8, without
its newline) across day files, and `seq`, its position in the chain. The first
line of a log has `prev_hash` GENESIS. An edited line no longer hashes to what
its successor recorded; a removed line leaves a gap in `seq`; swapped lines
point at each other out of order. Lines written before chaining existed (older
versions, atomic-agents-stack) carry neither key: the chain starts after them.

Format: spec/log-record.md ("Hash chain").
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

GENESIS = "0" * 64
_TAIL_CHUNK = 8192
_PREV = re.compile(rb'"prev_hash":"([0-9a-f]{64})"')
_SEQ = re.compile(rb'"seq":(\d+)[,}]')


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def newest_first(log_root: Path) -> Iterator[Path]:
    """Day files from the newest back, listing one month folder at a time (the newest costs O(1) listings)."""
    try:
        months = sorted((e.name for e in os.scandir(log_root) if e.is_dir() and not e.name.startswith(".")),
                        reverse=True)
    except FileNotFoundError:
        return
    for month in months:
        days = sorted((e.name for e in os.scandir(log_root / month)
                       if e.name.endswith(".jsonl") and not e.name.startswith(".")), reverse=True)
        for day in days:
            yield log_root / month / day


def tail_lines(path: Path) -> Iterator[bytes]:
    """The file's non-blank lines from the last one backwards, read in chunks from the end."""
    with open(path, "rb") as f:
        pos = f.seek(0, os.SEEK_END)
        buf = b""
        first = True
        while pos > 0:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
            if first:
                first = False
                # The file's final newline ends the last line; it does not start an empty one.
                buf = buf[:-1] if buf.endswith(b"\n") else buf
            head, *complete = buf.split(b"\n")
            buf = head
            for line in reversed(complete):
                if line.strip():
                    yield line
        if buf.strip():
            yield buf


def chain_fields(line: bytes) -> tuple[str, int] | None:
    """(prev_hash, seq) of one line, or None for an unchained or unreadable line."""
    prev, seq = _PREV.findall(line), _SEQ.findall(line)
    if len(prev) == 1 and len(seq) == 1:
        return prev[0].decode(), int(seq[0])
    if not prev and not seq:
        return None
    # The key text appears more than once (a nested value): let the JSON parser say which is top level.
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, dict) and isinstance(record.get("prev_hash"), str) and isinstance(record.get("seq"), int):
        return record["prev_hash"], record["seq"]
    return None


@dataclass
class Tip:
    """Where the chain ends: the hash of the last line and the last seq written."""

    hash: str = GENESIS
    seq: int = 0


def read_tip(files: Iterable[Path]) -> Tip:
    """The tip from the end of the log, day files newest first: the last line's hash (torn or not) and seq.

    Reads back only until a chained line or an unchained record is found,
    which is the last line or the one before a torn fragment.
    """
    tip: Tip | None = None
    for path in files:
        try:
            lines = tail_lines(path)
            for line in lines:
                if tip is None:
                    tip = Tip(line_hash(line), 0)
                fields = chain_fields(line)
                if fields is not None:
                    tip.seq = fields[1]
                    return tip
                try:
                    json.loads(line)
                except ValueError:
                    continue  # a torn fragment: the seq is on a line before it
                return tip  # an unchained record (an older writer): the chain starts after it at seq 1
        except FileNotFoundError:
            continue
    return tip or Tip()


def link(records: list[dict[str, Any]], tip: Tip, encode: Callable[[dict[str, Any]], str]) -> list[str]:
    """The records as lines, each chained to the one before; `tip` advances to the last."""
    lines = []
    for record in records:
        tip.seq += 1
        line = encode({**record, "prev_hash": tip.hash, "seq": tip.seq})
        tip.hash = line_hash(line.encode("utf-8"))
        lines.append(line)
    return lines


class ChainWriter:
    """Adds prev_hash and seq to records appended to one agent's log; the caller holds the write lock.

    The tip is cached between appends and re-read only when the newest day file
    changed behind our back (another process appended), so an append costs a
    stat, not a read of the day.
    """

    def __init__(self, log_root: Path) -> None:
        self.log_root = log_root
        self._key: tuple[str, int, int, int] | None = None
        self._tip = Tip()

    def prepare(self, requested: Path) -> tuple[Path, Tip]:
        """The file to append to and the chain's tip.

        Never a day file older than the newest one (a run that started before
        midnight and ends after a later record was written goes into the newer
        file), so the order of files and lines is the order of appends.
        """
        files = newest_first(self.log_root)
        newest = next(files, None)
        path = requested
        if newest is not None and (newest.parent.name, newest.name) > (requested.parent.name, requested.name):
            path = newest
        key = _stat_key(newest)
        if key is None or key != self._key:
            self._tip = read_tip(itertools.chain([newest] if newest else [], files))
            self._key = key
        return path, Tip(self._tip.hash, self._tip.seq)

    def written(self, path: Path, tip: Tip) -> None:
        self._key = _stat_key(path)
        self._tip = tip


def _stat_key(path: Path | None) -> tuple[str, int, int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


# --- verification -------------------------------------------------------------

@dataclass
class Problem:
    """One finding of `verify`: `level` is "error" (tampering) or "warning" / "info"."""

    level: str
    path: Path
    line_no: int
    message: str

    def one_line(self, root: Path | None = None) -> str:
        where = self.path
        if root is not None:
            try:
                where = self.path.relative_to(root)
            except ValueError:
                pass
        return f"{self.level.upper():7} {where}:{self.line_no}: {self.message}"


@dataclass
class Verdict:
    lines: int = 0
    chained: int = 0
    tip: Tip = field(default_factory=Tip)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.level == "error" for p in self.problems)


@dataclass
class _Line:
    path: Path
    no: int
    hash: str
    fields: tuple[str, int] | None
    is_json: bool


def _read_lines(files: list[Path]) -> list[_Line]:
    out: list[_Line] = []
    for path in files:
        raw = path.read_bytes()
        for no, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            fields = chain_fields(line)
            is_json = fields is not None
            if not is_json:
                try:
                    is_json = isinstance(json.loads(line), dict)
                except ValueError:
                    is_json = False
            out.append(_Line(path, no, line_hash(line), fields, is_json))
    return out


def verify(files: list[Path]) -> Verdict:
    """Check the chain over the day files (oldest first); one Problem per edited, removed or moved line."""
    lines = _read_lines(files)
    verdict = Verdict(lines=len(lines))
    if not lines:
        return verdict
    position = {ln.hash: i for i, ln in enumerate(lines)}
    start = next((i for i, ln in enumerate(lines) if ln.fields is not None), None)
    if start is None:
        first = lines[0]
        verdict.problems.append(Problem("warning", first.path, first.no,
                                        f"no hash chain: all {len(lines)} lines predate it (written by an older "
                                        "version); new records start the chain"))
        return verdict
    if start > 0 and lines[start].fields[0] == GENESIS:  # type: ignore[index]
        # The chain began on an empty log: whatever precedes its first line came later.
        for ln in lines[:start]:
            verdict.problems.append(Problem("error", ln.path, ln.no, "inserted before the start of the chain"))
        start_prev = GENESIS
    elif start > 0:
        verdict.problems.append(Problem("info", lines[start].path, lines[start].no,
                                        f"the hash chain starts here; the {start} line(s) before it predate it"))
        start_prev = lines[start - 1].hash
    else:
        start_prev = GENESIS
    misplaced: set[int] = set()
    edited: set[int] = set()
    last_seq: int | None = None
    gap_start: int | None = None
    for i in range(start, len(lines)):
        ln = lines[i]
        if ln.fields is None:
            if gap_start is None:
                gap_start = i
            continue
        prev_hash, seq = ln.fields
        verdict.chained += 1
        if gap_start is not None:
            _report_gap(verdict, lines, gap_start, i, prev_hash)
            gap_start = None
        expected = lines[i - 1].hash if i > start else start_prev
        if prev_hash != expected:
            j = position.get(prev_hash, -1) if prev_hash != GENESIS else -1
            if j > i:
                misplaced.add(i)  # its predecessor comes later: this line was moved up
            elif 0 <= j < i - 1:
                misplaced.update(k for k in range(j + 1, i) if lines[k].fields is not None)
            elif last_seq is not None and seq > last_seq + 1:
                verdict.problems.append(Problem(
                    "error", ln.path, ln.no,
                    f"{seq - last_seq - 1} line(s) removed just before this line (seq jumps from {last_seq} "
                    f"to {seq})"))
            elif last_seq is not None and seq == last_seq + 1 and i - 1 >= start:
                edited.add(i - 1)
            elif prev_hash == GENESIS:
                verdict.problems.append(Problem("error", ln.path, ln.no,
                                                "a second chain start: the lines before it were added later"))
            else:
                verdict.problems.append(Problem("error", ln.path, ln.no,
                                                "prev_hash matches no line: the line before it was edited or removed"))
        elif last_seq is not None and seq != last_seq + 1 and i - 1 not in misplaced:
            verdict.problems.append(Problem("error", ln.path, ln.no,
                                            f"seq {seq} follows seq {last_seq}: renumbered"))
        last_seq = seq
        verdict.tip = Tip(ln.hash, seq)
    if gap_start is not None:
        _report_gap(verdict, lines, gap_start, len(lines), None)
    for i in sorted(edited - misplaced):
        ln = lines[i]
        verdict.problems.append(Problem("error", ln.path, ln.no,
                                        "edited: the line after it recorded a different hash for it"))
    for i in sorted(misplaced):
        ln = lines[i]
        seq = ln.fields[1] if ln.fields else "?"
        verdict.problems.append(Problem("error", ln.path, ln.no, f"out of order (seq {seq}): moved or swapped"))
    verdict.problems.sort(key=lambda p: (str(p.path), p.line_no))
    verdict.tip = Tip(lines[-1].hash, verdict.tip.seq)
    return verdict


def _report_gap(verdict: Verdict, lines: list[_Line], a: int, b: int, next_prev: str | None) -> None:
    """Unchained lines inside the chain: a crash's torn fragment, an older writer, or an insertion."""
    linked = next_prev is None or next_prev == lines[b - 1].hash
    for k in range(a, b):
        ln = lines[k]
        if not ln.is_json and linked:
            verdict.problems.append(Problem("warning", ln.path, ln.no,
                                            "torn line (a writer was killed mid-append); readers skip it"))
        elif not linked:
            verdict.problems.append(Problem("error", ln.path, ln.no, "inserted: a line without a place in the chain"))
        elif ln.is_json:
            verdict.problems.append(Problem("warning", ln.path, ln.no,
                                            "gap in the chain: written without prev_hash (an older vault-agent?)"))
