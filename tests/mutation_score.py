"""Mutation score per module from a ``mutmut run`` (``make mutate``): ``python tests/mutation_score.py mutants``.

Score = killed / (killed + survived), counting timeouts and crashes as killed (the mutant did not pass) and
leaving out mutants that were not checked or that no selected test reaches ("no tests", reported apart).
Prints one row per mutated file and the surviving mutants, which ``mutmut show NAME`` displays.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code


def summarise(root: Path) -> tuple[list[tuple[str, Counter]], list[str]]:
    rows, survivors = [], []
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        if not codes:
            continue
        counts = Counter()
        for name, code in codes.items():
            status = status_by_exit_code[code]
            if status in ("timeout", "segfault", "suspicious", "caught by type check"):
                status = "killed"
            counts[status] += 1
            if status == "survived":
                survivors.append(name)
        rows.append((str(meta.relative_to(root))[: -len(".meta")], counts))
    return rows, survivors


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "mutants")
    rows, survivors = summarise(root)
    print(f"{'module':52s} {'killed':>7s} {'survived':>9s} {'no tests':>9s} {'unchecked':>10s} {'score':>7s}")
    for name, c in rows:
        tested = c["killed"] + c["survived"]
        score = f"{100 * c['killed'] / tested:6.1f}%" if tested else "     -"
        print(f"{name:52s} {c['killed']:7d} {c['survived']:9d} {c['no tests']:9d} {c['not checked']:10d} {score}")
    if survivors:
        print("\nsurvivors (mutmut show NAME):")
        print("\n".join(f"  {name}" for name in survivors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
