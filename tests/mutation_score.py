"""Mutation score per module from a ``mutmut run`` (``make mutate``): ``python tests/mutation_score.py mutants``.

Score = killed / (killed + survived), counting timeouts and crashes as killed (the mutant did not pass) and
leaving out mutants that were not checked or that no selected test reaches ("no tests", reported apart).
Prints one row per mutated file and the surviving mutants, which ``mutmut show NAME`` displays.
``python tests/mutation_score.py --markdown BEFORE/mutants [AFTER/mutants]`` prints the table of
benchmarks/RESULTS.md's ``mutation`` section instead (scores before and after a rerun with new tests);
``--functions BEFORE/mutants [AFTER/mutants]`` the same per mutated function.
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


def markdown(before: Path, after: Path | None) -> str:
    """One row per module with checked mutants: how many of its mutants were checked, the score on ``before``
    and, with ``after`` (a rerun of the same mutants with more tests, e.g. ``mutation_run.py --rerun``), after."""
    later = dict(summarise(after)[0]) if after is not None else {}
    lines = ["| module | mutants | checked | killed / checked (score) | after new tests |", "|---|---|---|---|---|"]
    for name, c in summarise(before)[0]:
        checked = c["killed"] + c["survived"]
        if not checked:
            continue
        total = sum(c.values())
        cell = f"{c['killed']} / {checked} ({100 * c['killed'] / checked:.1f} %)"
        a = later.get(name)
        a_checked = a["killed"] + a["survived"] if a else 0
        a_cell = f"{a['killed']} / {a_checked} ({100 * a['killed'] / a_checked:.1f} %)" if a_checked else "-"
        lines.append(f"| `{name}` | {total} | {checked} ({100 * checked / total:.0f} %) | {cell} | {a_cell} |")
    return "\n".join(lines)


def verdicts(root: Path) -> dict[str, str]:
    """Mutant name -> ``killed`` (timeouts and crashes included), ``survived``, ``no tests`` or ``not checked``."""
    out = {}
    for meta in root.rglob("*.py.meta"):
        for name, code in json.loads(meta.read_text()).get("exit_code_by_key", {}).items():
            status = status_by_exit_code[code]
            out[name] = "killed" if status in ("timeout", "segfault", "suspicious", "caught by type check") else status
    return out


def function_markdown(before: Path, after: Path | None) -> str:
    """One row per mutated function with checked mutants: mutants, checked, killed before and after."""
    first, later = verdicts(before), verdicts(after) if after is not None else {}
    functions: dict[str, list[str]] = {}
    for name in first:
        functions.setdefault(name.partition("__mutmut_")[0], []).append(name)
    lines = ["| function | mutants | checked | killed (before) | killed (after) |", "|---|---|---|---|---|"]
    for function in sorted(functions):
        names = functions[function]
        checked = [n for n in names if first[n] in ("killed", "survived")]
        if not checked:
            continue
        killed = sum(first[n] == "killed" for n in checked)
        killed_after = sum(later.get(n, first[n]) == "killed" for n in checked) if after is not None else None
        module, _, local = function.partition(".x")  # mutmut's x_<function> and xǁ<Class>ǁ<method>
        local = local[1:] if local.startswith("_") else local.replace("ǁ", ".")[1:]
        label = f"{module.removeprefix('pyg_em.')}.{local}"
        lines.append(f"| `{label}` | {len(names)} | {len(checked)} | {killed} | "
                     f"{killed_after if killed_after is not None else '-'} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--functions":
        print(function_markdown(Path(argv[1]), Path(argv[2]) if len(argv) > 2 else None))
        return 0
    if argv and argv[0] == "--markdown":
        print(markdown(Path(argv[1]), Path(argv[2]) if len(argv) > 2 else None))
        return 0
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
