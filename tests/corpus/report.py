"""Print the corpus outcome table by format x kind: ``python -m tests.corpus.report [--json OUT] [--modes ...]``.

Builds the corpus in a temporary directory, runs every file through ``core.api`` and the CLI (``predict``,
``evaluate``) and prints counts per format and outcome plus every run that is not a clean refusal / masked / ok.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections import Counter, defaultdict
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write every run as JSON here")
    ap.add_argument("--md", help="write both tables (by format; by format x kind) as markdown here")
    ap.add_argument("--modes", default="api,predict,evaluate")
    ap.add_argument("--only", help="substring filter on file names")
    ap.add_argument("--names", help="comma-separated file names to run (default: all)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    from tests.corpus.generate import build_corpus
    from tests.corpus.runner import GOOD, run_entry, warm_up

    modes = tuple(args.modes.split(","))
    with tempfile.TemporaryDirectory(prefix="gps-corpus-") as tmp:
        corpus, out = Path(tmp) / "files", Path(tmp) / "out"
        out.mkdir(parents=True)
        entries = build_corpus(corpus)
        if args.only:
            entries = [e for e in entries if args.only in e.name]
        if args.names:
            keep = set(args.names.split(","))
            entries = [e for e in entries if e.name in keep]
        warm_up(corpus)
        rows = []
        for i, e in enumerate(entries):
            rows.append(run_entry(e, corpus, out, modes))
            print(f"\r{i + 1}/{len(entries)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    print(format_table(rows, modes))
    bad = [(r["name"], m, r[m]) for r in rows for m in modes if r[m]["outcome"] not in GOOD]
    print(f"\n{len(entries)} files, {len(rows) * len(modes)} runs; {len(bad)} not clean:")
    for name, m, res in bad:
        print(f"  {res['outcome']:16s} {m:8s} {name}: {res['message'][:160]}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.md:
        Path(args.md).write_text("## Outcomes by format (all runs)\n\n" + format_table(rows, modes) +
                                 "\n\n## Outcome by format x kind\n\n" + format_kind_table(rows, modes) + "\n")
    return 0


def format_kind_table(rows, modes) -> str:
    """One line per corpus file: format, kind, expected outcome and the outcome of every mode."""
    lines = ["| format | kind | expect | " + " | ".join(modes) + " |", "|---|---|---|" + "---|" * len(modes)]
    for r in sorted(rows, key=lambda r: (r["fmt"], r["kind"], r["name"])):
        lines.append(f"| {r['fmt']} | {r['kind']} | {r['expect']} | " + " | ".join(r[m]["outcome"] for m in modes)
                     + " |")
    return "\n".join(lines)


def format_table(rows, modes) -> str:
    """Markdown table: per format, counts of each outcome over all runs, then per format x kind the worst."""
    outcomes = ["refused", "masked", "ok", "refused_unnamed", "traceback", "silent", "wrote_on_refusal", "slow",
                "timeout"]
    by_fmt: dict[str, Counter] = defaultdict(Counter)
    files: Counter = Counter()
    for r in rows:
        files[r["fmt"]] += 1
        for m in modes:
            by_fmt[r["fmt"]][r[m]["outcome"]] += 1
    lines = ["| format | files | runs | " + " | ".join(outcomes) + " |",
             "|---|---|---|" + "---|" * len(outcomes)]
    tot: Counter = Counter()
    for f in sorted(by_fmt):
        c = by_fmt[f]
        tot.update(c)
        lines.append(f"| {f} | {files[f]} | {sum(c.values())} | " + " | ".join(str(c[o]) for o in outcomes) + " |")
    lines.append(f"| **all** | {sum(files.values())} | {sum(tot.values())} | " +
                 " | ".join(str(tot[o]) for o in outcomes) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
