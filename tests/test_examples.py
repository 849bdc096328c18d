"""Every script in examples/ runs in smoke mode (``PYG_EM_SMOKE=1 ... --smoke``) and exits 0; see examples/README.md."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
SMOKE_TIMEOUT_S = 120  # generous for a busy shared machine; the convention asks for a few seconds


def test_examples_exist():
    assert EXAMPLES, "examples/ holds no scripts"
    assert (ROOT / "examples" / "README.md").is_file()


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_in_smoke_mode(script, tmp_path):
    env = {**os.environ, "PYG_EM_SMOKE": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), "--smoke"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=SMOKE_TIMEOUT_S)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, (f"{script.name} failed after {wall:.1f} s:\n{proc.stdout[-3000:]}\n"
                                  f"{proc.stderr[-3000:]}")
    assert proc.stdout.strip(), f"{script.name} printed nothing"
