"""The Python code of the tutorials runs as written and prints exactly the output the tutorial shows.

A tutorial's ``.. code-block:: python`` blocks run in order in one namespace (per tutorial, from a scratch
directory). A ``.. code-block:: text`` block that directly follows a Python block (only blank lines in
between) is that block's expected standard output, compared line by line (trailing spaces ignored).

To see what the blocks of a tutorial print while writing it::

    PYTHONPATH=$PWD python -m tests.test_tutorials docs/tutorials/linalg.rst
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.conftest import requires_sampler

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
#: Every tutorial is checked except these: baselines.rst trains for minutes on a 2000-node graph (its code is
#: exercised by examples/clustering_baselines.py and tests/test_cli.py instead).
UNCHECKED = {"index.rst", "baselines.rst"}
CHECKED = sorted(p.name for p in TUTORIALS.glob("*.rst") if p.name not in UNCHECKED)

_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block::\s*(\w+)\s*$")


def _read_block(lines: list[str], start: int, indent: int) -> tuple[str, int]:
    """The body of a directive whose line is ``start - 1``; returns (dedented text, index after the body)."""
    i = start
    while i < len(lines) and lines[i].strip().startswith(":"):  # directive options such as :caption:
        i += 1
    body = []
    while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
        body.append(lines[i])
        i += 1
    return textwrap.dedent("\n".join(body)).strip("\n") + "\n", i


def extract_blocks(path: Path) -> list[tuple[str, str | None, int]]:
    """``(code, expected output or None, line number)`` for every Python block of an rst file."""
    lines = path.read_text().splitlines()
    blocks: list[tuple[str, str | None, int]] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match or match.group(2) != "python":
            i += 1
            continue
        code, i_after = _read_block(lines, i + 1, len(match.group(1)))
        lineno, expected = i + 1, None
        j = i_after
        while j < len(lines) and not lines[j].strip():
            j += 1
        following = _DIRECTIVE.match(lines[j]) if j < len(lines) else None
        if following and following.group(2) == "text":
            expected, i_after = _read_block(lines, j + 1, len(following.group(1)))
        blocks.append((code, expected, lineno))
        i = i_after
    return blocks


def run_blocks(path: Path, cwd: Path) -> list[str]:
    """Run every Python block of ``path`` in order in one namespace, from ``cwd``; returns each block's stdout.

    The blocks run in this process (an import of torch and PyG per tutorial would cost more than the tutorials
    themselves); an exception propagates with the tutorial's file and line in its traceback.
    """
    namespace = {"__name__": "__main__"}
    outputs = []
    previous, threads = os.getcwd(), torch.get_num_threads()
    os.chdir(cwd)
    torch.set_num_threads(1)  # as a reader runs them on a laptop; several threads only contend on a busy CI box
    try:
        for code, _, lineno in extract_blocks(path):
            captured = io.StringIO()
            with contextlib.redirect_stdout(captured):
                exec(compile(code, f"{path}:{lineno}", "exec"), namespace)
            outputs.append(captured.getvalue())
    finally:
        os.chdir(previous)
        torch.set_num_threads(threads)
        torch.set_printoptions(profile="default")  # tutorials may change how tensors print
    return outputs


def _normalise(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


# The DAEGC tutorial shows NeighborLoader mini-batches, which need pyg_lib or torch_sparse.
NEEDS_SAMPLER = {"daegc.rst"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=requires_sampler) if n in NEEDS_SAMPLER else n for n in CHECKED]
)
def test_tutorial_code_runs_and_prints_what_it_shows(name, tmp_path):
    path = TUTORIALS / name
    blocks = extract_blocks(path)
    assert blocks, f"{name} has no Python code blocks"
    outputs = run_blocks(path, tmp_path)
    for (_, expected, lineno), actual in zip(blocks, outputs):
        if expected is not None:
            assert _normalise(actual) == _normalise(expected), f"{name}:{lineno} printed\n{actual}"


def test_block_extraction(tmp_path):
    rst = tmp_path / "t.rst"
    rst.write_text(".. code-block:: python\n\n    x = 1\n    print(x)\n\n.. code-block:: text\n\n    1\n\n"
                   "Prose.\n\n.. code-block:: python\n    :caption: two\n\n    print(x + 1)\n\n    print(x + 2)\n\n"
                   "More prose.\n\n.. code-block:: text\n\n    not an output: prose came first\n")
    blocks = extract_blocks(rst)
    assert [(code, expected) for code, expected, _ in blocks] == [
        ("x = 1\nprint(x)\n", "1\n"), ("print(x + 1)\n\nprint(x + 2)\n", None)]
    assert run_blocks(rst, tmp_path) == ["1\n", "2\n3\n"]


if __name__ == "__main__":  # print what each block of a tutorial prints, for writing the text blocks
    import tempfile

    for arg in sys.argv[1:]:
        path = Path(arg).resolve()
        with tempfile.TemporaryDirectory() as scratch:
            outs = run_blocks(path, Path(scratch))
        for (_code, expected, lineno), out in zip(extract_blocks(path), outs):
            status = "" if expected is None else (" OK" if _normalise(out) == _normalise(expected) else " DIFFERS")
            print(f"==== {arg}:{lineno}{status}\n{out}", end="")
