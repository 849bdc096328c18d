"""Run every benchmark suite (``python -m benchmarks.run_all [name ...]``); each writes to RESULTS.md."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def suites() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    names = argv if argv else suites()
    unknown = [n for n in names if n not in suites()]
    if unknown:
        print(f"unknown benchmark suite(s) {unknown}; available: {suites()}", file=sys.stderr)
        return 2
    if not names:
        print("no benchmark suites found", file=sys.stderr)
        return 1
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
