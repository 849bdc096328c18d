"""Run chosen mutants of a ``mutmut run`` copy, in a chosen order: ``python tests/mutation_run.py DIR PATTERN...``.

``make mutate`` checks every mutant, cheapest first, and on a loaded machine that takes hours. This runner
takes the mutants (and mutmut's per-function test selection, ``mutants/mutmut-stats.json``) of an existing
``mutmut run`` in ``DIR`` and checks those whose names match the fnmatch ``PATTERN``\\ s, in the order given:
each in a fork of one warm process, running only the tests that reach its function (fastest first, ``-x``),
as mutmut does. Verdicts go into mutmut's ``.meta`` files, so ``tests/mutation_score.py`` and ``mutmut
show``/``results`` read them. Differences from mutmut's scheduler: the order, sampling (``PATTERN@K`` or
``--sample K``: a seeded random subset of at most K mutants of each function), and a plain wall-clock
``--timeout`` (mutmut's is ``(estimate + 1 s) x 15``, which on a busy machine turns slow runs into false
timeouts).

Options: ``--jobs N`` (default 2), ``--timeout S`` (default 300), ``--rerun`` (check mutants that already
have a verdict, e.g. after adding tests), ``--tests T...`` (replace the per-function selection by these test
ids, e.g. a new oracle file, for every chosen mutant), ``--screen N`` (run the N fastest tests of the selection
first and the rest only if the mutant survives them: the same verdict, sooner for most mutants).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

TIMEOUT_EXIT = -24  # mutmut's code for a timeout (SIGXCPU)


def load_mutants(mutants: Path) -> dict[str, Path]:
    """Mutant name -> its ``.meta`` file."""
    found = {}
    for meta in mutants.rglob("*.py.meta"):
        for name in json.loads(meta.read_text()).get("exit_code_by_key", {}):
            found[name] = meta
    return found


def choose(names: dict[str, Path], patterns: list[str], sample: int | None, rerun: bool) -> list[str]:
    """The matching mutants in pattern order, each function's at most ``sample`` (seeded), undecided first."""
    verdicts = {}
    for meta in set(names.values()):
        verdicts.update(json.loads(meta.read_text())["exit_code_by_key"])
    chosen, seen = [], set()
    rng = random.Random(0)
    for entry in patterns:
        pattern, _, limit = entry.partition("@")
        limit = int(limit) if limit else sample
        by_function = defaultdict(list)
        for name in sorted(names, key=lambda n: (n.partition("__mutmut_")[0], int(n.rpartition("_")[2]))):
            if name not in seen and fnmatch.fnmatchcase(name, pattern):
                by_function[name.partition("__mutmut_")[0]].append(name)
        for group in by_function.values():
            picked = group if limit is None or len(group) <= limit else sorted(
                rng.sample(group, limit), key=group.index)
            for name in picked:
                seen.add(name)
                if rerun or verdicts.get(name) is None:
                    chosen.append(name)
    return chosen


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("patterns", nargs="+")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--tests", nargs="+", default=None)
    parser.add_argument("--screen", type=int, default=0)
    args = parser.parse_args(argv)

    mutants = (args.root / "mutants").resolve()
    stats = json.loads((mutants / "mutmut-stats.json").read_text())
    tests_by_function, duration = stats["tests_by_mangled_function_name"], stats["duration_by_test"]
    names = load_mutants(mutants)
    todo = choose(names, args.patterns, args.sample, args.rerun)
    print(f"{len(todo)} mutants to check", flush=True)

    os.chdir(mutants)  # as mutmut: the copy's tests import the mutated package
    sys.path.insert(0, str(mutants))
    os.environ["MUTANT_UNDER_TEST"] = ""
    import pytest
    from mutmut.configuration import config

    extra = config().pytest_add_cli_args
    with open(os.devnull, "w") as quiet:  # warm imports, as mutmut's forkserver
        stdout, sys.stdout = sys.stdout, quiet
        pytest.main(["--rootdir=.", "--collect-only", "-qqq", *extra, *config().pytest_add_cli_args_test_selection])
        sys.stdout = stdout

    running: dict[int, tuple[str, float]] = {}
    done = 0

    def record(name: str, code: int, seconds: float) -> None:
        nonlocal done
        meta = names[name]
        data = json.loads(meta.read_text())
        data["exit_code_by_key"][name] = code
        data.setdefault("durations_by_key", {})[name] = seconds
        tmp = meta.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=4))
        tmp.replace(meta)
        done += 1
        verdict = {0: "survived", 1: "killed", TIMEOUT_EXIT: "timeout", 33: "no tests"}.get(code, f"exit {code}")
        print(f"[{done}/{len(todo)}] {verdict:8s} {seconds:6.1f}s {name}", flush=True)

    def reap(block: bool) -> None:
        while running:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            if pid == 0:
                break
            name, start = running.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            record(name, TIMEOUT_EXIT if code == -signal.SIGKILL else code, time.time() - start)
            block = False
        now = time.time()
        for pid, (_, start) in list(running.items()):
            if now - start > args.timeout:
                os.kill(pid, signal.SIGKILL)

    for name in todo:
        tests = args.tests or sorted(tests_by_function.get(name.partition("__mutmut_")[0], ()),
                                     key=lambda t: duration.get(t, 0.0))
        if not tests:
            record(name, 33, 0.0)
            continue
        while len(running) >= args.jobs:
            reap(block=False)
            time.sleep(0.05)
        pid = os.fork()
        if pid == 0:
            os.environ["MUTANT_UNDER_TEST"] = name
            sys.stdout = sys.stderr = open(os.devnull, "w")
            code = 0
            # A screen of the fastest tests first: most mutants fail one of them, and a run of a few tests skips
            # collecting the other files. Survivors of the screen then run the whole selection.
            for part in ([tests[:args.screen], tests[args.screen:]] if args.screen else [tests]):
                if part:
                    code = pytest.main(["--rootdir=.", "-x", "-q", "-p", "no:randomly", *part, *extra])
                if code:
                    break
            os._exit(int(code))
        running[pid] = (name, time.time())
    while running:
        reap(block=False)
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
