"""Clew's TraceQL corpus run through Grafana's own TraceQL grammar (`@grafana/lezer-traceql`).

tests/traceql-lezer/compare-corpus.mjs parses every query of crates/traceql/tests/corpus.txt with the grammar
Grafana's editor uses and reports, per query, whether lezer's tree holds an error node next to the corpus's
expectation for Clew. Every disagreement must be listed, with its reason, in
crates/traceql/tests/lezer-disagreements.txt, and every listed query must still disagree: the list is exact.

Needs Node.js and `npm ci` in tests/traceql-lezer (scripts/test.sh does both).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LEZER_DIR = REPO / "tests" / "traceql-lezer"
CORPUS = REPO / "crates" / "traceql" / "tests" / "corpus.txt"
DISAGREEMENTS = REPO / "crates" / "traceql" / "tests" / "lezer-disagreements.txt"
DIRECTIONS = {
    ("error", "valid"): "lezer-accepts",
    ("valid", "error"): "lezer-rejects",
}


@pytest.fixture(scope="module")
def report() -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Node.js >= 20 runs Grafana's TraceQL grammar)", pytrace=False)
    if not (LEZER_DIR / "node_modules" / "@grafana" / "lezer-traceql").is_dir():
        pytest.fail(f"run `npm ci` in {LEZER_DIR} first", pytrace=False)
    out = subprocess.run([node, str(LEZER_DIR / "compare-corpus.mjs"), str(CORPUS)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"compare-corpus.mjs failed:\n{out.stderr}"
    return json.loads(out.stdout)


def listed() -> dict[str, tuple[str, str]]:
    """query -> (direction, reason) from the committed list."""
    entries: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(DISAGREEMENTS.read_text(encoding="utf-8").splitlines(), 1):
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        query, sep, rest = line.partition(" ==> ")
        assert sep, f"lezer-disagreements.txt line {n}: no ' ==> '"
        direction, sep, reason = rest.partition(": ")
        assert direction in DIRECTIONS.values(), f"line {n}: unknown direction {direction!r}"
        assert sep and reason.strip(), f"line {n}: a disagreement needs a reason"
        assert query not in entries, f"line {n}: {query!r} is listed twice"
        entries[query] = (direction, reason)
    return entries


def actual(report: dict) -> dict[str, str]:
    """query -> direction for every corpus query on which lezer and Clew disagree."""
    seen: dict[str, tuple[str, str]] = {}
    found: dict[str, str] = {}
    for q in report["queries"]:
        outcome = (q["clew"], q["lezer"])
        assert seen.setdefault(q["query"], outcome) == outcome, f"{q['query']!r} appears twice with different outcomes"
        if outcome in DIRECTIONS:
            found[q["query"]] = DIRECTIONS[outcome]
    return found


def test_the_pinned_grammar_ran_over_the_whole_corpus(report):
    pinned = json.loads((LEZER_DIR / "package.json").read_text())["dependencies"]["@grafana/lezer-traceql"]
    assert report["parser"] == f"@grafana/lezer-traceql@{pinned}"
    corpus_queries = [
        line for line in CORPUS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(report["queries"]) == len(corpus_queries) >= 300
    # Both parsers must see errors and clean queries, or the comparison says nothing.
    outcomes = {(q["clew"], q["lezer"]) for q in report["queries"]}
    assert ("valid", "valid") in outcomes and ("error", "error") in outcomes


def test_every_disagreement_is_listed_with_its_reason(report):
    found = actual(report)
    known = listed()
    trees = {q["query"]: q["tree"] for q in report["queries"]}
    unlisted = [f"{q} ==> {d}: ?   (lezer tree: {trees[q]})" for q, d in found.items() if q not in known]
    assert not unlisted, "disagreements missing from lezer-disagreements.txt:\n" + "\n".join(unlisted)


def test_every_listed_disagreement_still_disagrees_the_same_way(report):
    found = actual(report)
    stale = [f"{q} ({d})" for q, (d, _) in listed().items() if found.get(q) != d]
    assert not stale, (
        "listed in lezer-disagreements.txt but not (or no longer) disagreeing that way:\n" + "\n".join(stale)
    )
