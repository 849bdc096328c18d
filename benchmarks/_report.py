"""Shared helpers for the benchmark suites: replace one suite's section of RESULTS.md, describe the machine."""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")


def data_root() -> str:
    """The Planetoid data root of every suite: ``$PYG_EM_DATA``, else ``../shared/data/planetoid`` beside the
    checkout (the one place this default is written)."""
    return os.environ.get("PYG_EM_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "planetoid"))


def machine() -> str:
    """One line naming the hardware and library versions a table was measured with."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    return (f"{platform.node() and 'host'}: {os.cpu_count()} CPU cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {device}")


def command() -> str:
    """The command line that produced the current run (``python -m package.module args`` when run with -m)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    target = f"-m {spec.name}" if spec is not None and spec.name else sys.argv[0]
    return " ".join(["python", target, *sys.argv[1:]])


def run_line() -> str:
    """The command that produced a table, the machine and its load average at the end of the run (one block)."""
    load = os.getloadavg()
    return (f"Command: `PYTHONPATH=$PWD {command()}`  \nMachine: {machine()}; load average (1/5/15 min) at the end "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine: timings are noisy)")


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace (or append) the block between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` in RESULTS.md."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
