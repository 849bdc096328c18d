"""Seeded fuzz harness for pyg_em.linalg: laplacian, laplacian_matvec, sparse_solve, LaplacianPseudoInverse and
sparse_lstsq against numpy oracles written here.

Every case is a valid input (the result must match the oracle), an invalid one (a TypeError/ValueError naming
the argument or the defect), or a "grey" one -- valid but beyond what its precision or iteration budget can
resolve, which may give a correct result or a clear error (singular to working precision, a reported
non-convergence, a warning that the result is inaccurate). Anything else is a failure: a wrong result, a valid
input rejected, an unclear error, a bad input accepted, a hang (> ``HANG_S`` seconds).

``PYG_EM_FUZZ_CASES`` sets the case count (200 by default, for CI; ``make fuzz`` runs 2000). Run with ``-s`` to
see the classification table.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections import Counter

import numpy as np
import pytest
import torch

from pyg_em.linalg import (
    ConvergenceError,
    LaplacianPseudoInverse,
    laplacian,
    laplacian_matvec,
    sparse_lstsq,
    sparse_solve,
)

CASES = int(os.environ.get("PYG_EM_FUZZ_CASES", "200"))
HANG_S = 60.0  # the slowest legitimate case (20000 Neumann terms, then a ConvergenceError) is ~3 s idle
FAILURES = ("wrong result", "valid input rejected", "unclear error", "bad input accepted", "hang")


class Hang(Exception):
    pass


# ------------------------------------------------------------------------------------------------ generators
def undirected(rng, n, dtype, spread):
    """Random undirected graph on n nodes, both directions stored, log-uniform weights over 10^[-spread, spread]."""
    p = rng.uniform(0.1, 0.9)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < p], dtype=np.int64)
    pairs = pairs.reshape(-1, 2)
    w = 10.0 ** rng.uniform(-spread, spread, len(pairs))
    ei = np.concatenate([pairs, pairs[:, ::-1]]).T
    return torch.from_numpy(np.ascontiguousarray(ei)), torch.from_numpy(np.concatenate([w, w])).to(dtype)


def dense_w(ei, w, n):
    W = np.zeros((n, n))
    np.add.at(W, (ei[0].numpy(), ei[1].numpy()), w.double().numpy())
    np.fill_diagonal(W, 0.0)
    return W


def dense_lap(W, normalization=None, shift=0.0):
    deg = W.sum(1)
    n = len(W)
    if normalization is None:
        L = np.diag(deg) - W
    else:
        inv = np.where(deg > 0, 1 / np.where(deg > 0, deg, 1), 0)
        mask = np.diag((deg > 0).astype(float))
        L = mask - (np.sqrt(inv)[:, None] * W * np.sqrt(inv)[None] if normalization == "sym" else inv[:, None] * W)
    return L + shift * np.eye(n)


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


# ------------------------------------------------------------------------------------------------ cases
# Each returns (kind, call, check, expect): kind in {"valid", "invalid", "grey"}; call() runs the library;
# check(out) says whether a result is right; expect is the word an error must contain.
def case_laplacian(rng):
    n = int(rng.integers(1, 25))
    dtype = pick(rng, [torch.float32, torch.float64])
    ei, w = undirected(rng, n, dtype, pick(rng, [0.5, 2, 4]))
    norm = pick(rng, [None, "sym", "rw"])
    shift = float(pick(rng, [0.0, 0.1, 3.0]))
    mutation = pick(rng, ["none"] * 6 + ["directed", "per_direction", "negative", "nan", "shape", "range",
                                          "float_index", "transposed", "bad_norm", "neg_shift", "symmetrize"])
    rtol = 1e-4 if dtype == torch.float32 else 1e-10
    sym = None
    if mutation == "directed" and ei.size(1):
        ei, w = ei[:, 1:], w[1:]
    elif mutation == "per_direction" and ei.size(1):
        w = w.clone()
        w[0] = w[0] * 2 + 1
    elif mutation == "symmetrize" and ei.size(1):
        w = w.clone()
        w[0] = w[0] * 2 + 1
        sym = "mean"
    elif mutation == "negative" and ei.size(1):
        w = -w
    elif mutation == "nan" and ei.size(1):
        w = w.clone()
        w[0] = float("nan")
    elif mutation == "shape":
        w = torch.cat([w, w.new_ones(1)])
    elif mutation == "range":
        ei = torch.cat([ei, torch.tensor([[0], [n + 2]])], dim=1)
        w = torch.cat([w, w.new_ones(1)])
    elif mutation == "float_index":
        ei = ei.double()
    elif mutation == "transposed" and ei.size(1) != 2:
        ei = ei.t().contiguous()
    elif mutation == "bad_norm":
        norm = "symmetric"
    elif mutation == "neg_shift":
        shift = -1.0
    else:
        mutation = "none"
    expect = {"directed": "symmetric", "per_direction": "symmetric", "negative": "edge_weight",
              "nan": "edge_weight", "shape": "edge_weight", "range": "edge_index", "float_index": "edge_index",
              "transposed": "edge_index", "bad_norm": "normalization", "neg_shift": "shift"}.get(mutation)

    def call():
        return laplacian(ei, w, n, normalization=norm, shift=shift, symmetrize=sym).to_dense()

    def check(out):
        W = dense_w(ei, w, n)
        if sym:
            W = (W + W.T) / 2
        ref = dense_lap(W, norm, shift)
        return np.allclose(out.double().numpy(), ref, rtol=rtol, atol=rtol * max(1.0, np.abs(ref).max()))

    return ("invalid" if expect else "valid"), call, check, expect


def case_matvec(rng):
    n = int(rng.integers(1, 25))
    ei, w = undirected(rng, n, torch.float64, 2)
    x = torch.from_numpy(rng.standard_normal((n, int(rng.integers(1, 4)))))
    mutation = pick(rng, ["none"] * 4 + ["directed", "transposed", "x_rows", "x_nan", "w_dtype", "range"])
    num_nodes = None
    if mutation == "directed" and ei.size(1):
        ei, w = ei[:, 1:], w[1:]
    elif mutation == "transposed" and ei.size(1) != 2:
        ei = ei.t().contiguous()
    elif mutation == "x_rows" and n > 1:
        num_nodes = n + 1
    elif mutation == "x_nan":
        x = x.clone()
        x[0, 0] = float("nan")
    elif mutation == "w_dtype" and ei.size(1):
        w = w.float()
    elif mutation == "range" and ei.size(1):
        ei = ei.clone()
        ei[0, 0] = n + 3
    else:
        mutation = "none"
    expect = {"directed": "symmetric", "transposed": "edge_index", "x_rows": "x", "x_nan": "x",
              "w_dtype": "edge_weight", "range": "edge_index"}.get(mutation)

    def call():
        return laplacian_matvec(ei, w, x, num_nodes=num_nodes, shift=0.5)

    def check(out):
        return np.allclose(out.numpy(), dense_lap(dense_w(ei, w, n), None, 0.5) @ x.numpy(), rtol=1e-10, atol=1e-8)

    return ("invalid" if expect else "valid"), call, check, expect


def case_solve(rng):
    n = int(rng.integers(1, 40))
    dtype = pick(rng, [torch.float32, torch.float64])
    spread = pick(rng, [0.5, 2, 6])
    ei, w = undirected(rng, n, dtype, spread)
    W = dense_w(ei, w, n)
    scale = max(1.0, W.sum(1).max()) if len(W) else 1.0
    shift = float(pick(rng, [1e-3, 0.1, 1.0, 10.0])) * (scale if rng.random() < 0.5 else 1.0)
    method = pick(rng, ["auto", "auto", "cg", "direct"])
    k = int(rng.integers(0, 4))
    B = torch.from_numpy(rng.standard_normal((n, k) if k else (n,))).to(dtype)
    mutation = pick(rng, ["none"] * 8 + ["unshifted", "directed", "half", "b_shape", "b_nan", "bad_method",
                                          "neg_tol", "zero_maxiter", "b_dtype"])
    tol = maxiter = None
    if mutation == "unshifted" and ei.size(1):
        shift = 0.0
    elif mutation == "directed" and ei.size(1) and method != "direct":
        ei, w = ei[:, 1:], w[1:]
    elif mutation == "half":
        w, B = w.half(), B.half()
    elif mutation == "b_shape":
        B = torch.ones(n + 1, dtype=dtype)
    elif mutation == "b_nan":
        B = B.clone()
        B.view(-1)[0] = float("nan")
    elif mutation == "bad_method":
        method = "lu"
    elif mutation == "neg_tol":
        tol = -1.0
    elif mutation == "zero_maxiter":
        maxiter = 0
    elif mutation == "b_dtype":
        B = B.double() if dtype == torch.float32 else B.float()
    else:
        mutation = "none"
    expect = {"unshifted": "singular", "directed": "symmetric", "half": "float32 and float64", "b_shape": "B",
              "b_nan": "B", "bad_method": "method", "neg_tol": "tol", "zero_maxiter": "maxiter",
              "b_dtype": "dtype"}.get(mutation)
    # The matrix is built densely here from the weights (independent of laplacian()).
    if mutation == "directed":
        Wd = np.zeros((n, n))
        np.add.at(Wd, (ei[0].numpy(), ei[1].numpy()), w.double().numpy())
        Ad = np.diag(Wd.sum(1)) - Wd + shift * np.eye(n)
    else:
        Ad = dense_lap(dense_w(ei, w, n), None, shift)
    rows, cols = np.nonzero(Ad)
    rows = np.concatenate([rows, np.arange(n)])
    cols = np.concatenate([cols, np.arange(n)])
    vals = np.concatenate([Ad[np.nonzero(Ad)], np.zeros(n)])  # explicit zeros on the diagonal are harmless
    values = torch.from_numpy(vals).to(w.dtype)
    indices = torch.from_numpy(np.stack([rows, cols]).astype(np.int64))
    cond = np.linalg.cond(Ad) if n and not expect else 1.0
    eps = np.finfo(np.float32 if dtype == torch.float32 else np.float64).eps
    kind = "invalid" if expect else ("valid" if cond < 1e-3 / eps else "grey")

    def call():
        return sparse_solve((indices, values, n), B, method=method, tol=tol, maxiter=maxiter)

    def check(out):
        X = out.double().numpy().reshape(n, -1)
        Bn = B.double().numpy().reshape(n, -1)
        d = np.sqrt(np.diag(Ad))
        resid = np.linalg.norm((Ad @ X - Bn) / d[:, None]) / max(np.linalg.norm(Bn / d[:, None]), 1e-300)
        # CG stops at tol on the Jacobi-scaled residual (1e-10 / 1e-5); the LU is backward stable
        bound = 1e-8 if dtype == torch.float64 else 1e-3
        return out.dtype == dtype and out.shape == B.shape and resid <= bound * max(1.0, cond * eps * 1e3)

    return kind, call, check, expect


def case_pinv(rng):
    n = int(rng.integers(1, 25))
    method = pick(rng, ["cg", "direct", "neumann", "lowrank"])
    spread = pick(rng, [0.5, 1, 3] if method != "lowrank" else [0.5, 1, 3, 12])
    ei, w = undirected(rng, n, torch.float64, spread)
    eps = float(pick(rng, [0.0, 0.0, 0.1, 1.0]))
    B = torch.from_numpy(rng.standard_normal((n, 2)))
    mutation = pick(rng, ["none"] * 6 + ["zero_weights", "directed", "bad_method", "neg_eps", "b_shape", "half_b"])
    if mutation == "zero_weights":  # valid: the operator is 0 (eps = 0) or I / eps
        w = torch.zeros_like(w)
    if mutation == "directed" and ei.size(1):
        ei, w = ei[:, 1:], w[1:]
    elif mutation == "bad_method":
        method = "svd"
    elif mutation == "neg_eps":
        eps = -0.5
    elif mutation == "b_shape":
        B = torch.ones(n + 1, 2, dtype=torch.float64)
    elif mutation == "half_b":
        B = B.half()
        w = None
    elif mutation != "zero_weights":
        mutation = "none"
    expect = {"directed": "symmetric", "bad_method": "method", "neg_eps": "eps", "b_shape": "B",
              "half_b": "float32 and float64"}.get(mutation)
    W = dense_w(ei, w if w is not None else torch.ones(ei.size(1), dtype=torch.float64), n)
    L = dense_lap(W, None, max(eps, 0.0))
    ref = np.linalg.pinv(L, hermitian=True) @ B.double().numpy() if not expect else None
    kind = "invalid" if expect else "valid"
    if not expect:
        nonzero = np.linalg.eigvalsh(L) if n else np.zeros(0)
        nonzero = nonzero[nonzero > 1e-9 * max(1.0, np.abs(nonzero).max(initial=0))]
        cond = nonzero.max() / nonzero.min() if len(nonzero) else 1.0
        if cond > 1e6:
            kind = "grey"  # pinv's own cut-off and the solvers' grounding differ beyond this
        if method == "neumann" and len(nonzero):
            # Convergence rate of the splitting on the range of L: predicted terms against the default cap.
            deg = np.diag(L)
            omega = 0.5 if eps == 0 else 1.0
            T = np.eye(n) - omega * L / np.where(deg > 0, deg, 1.0)[:, None]
            lam = np.abs(np.linalg.eigvals(T))
            rho = np.sort(lam[lam < 1 - 1e-12])[-1] if (lam < 1 - 1e-12).any() else 0.0
            if rho > 0 and np.log(1e-11) / np.log(rho) > 10000:
                kind = "grey"

    def call():
        return LaplacianPseudoInverse(ei, w, num_nodes=n, method=method, eps=eps) @ B

    def check(out):
        return np.allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(ref).max()))

    return kind, call, check, expect


def case_lstsq(rng):
    n = int(rng.integers(1, 10))
    m = n + int(rng.integers(1, 15))
    dense = rng.standard_normal((m, n)) * (rng.random((m, n)) < 0.6)
    dense[np.arange(n), np.arange(n)] += 3.0  # full column rank, moderate conditioning
    B = torch.from_numpy(rng.standard_normal(m))
    mutation = pick(rng, ["none"] * 5 + ["wide", "b_shape", "half", "neg_atol"])
    atol = None
    if mutation == "wide":
        dense = dense.T.copy()
        B = torch.from_numpy(rng.standard_normal(n))
    elif mutation == "b_shape":
        B = torch.ones(m + 1, dtype=torch.float64)
    elif mutation == "half":
        B = B.half()
    elif mutation == "neg_atol":
        atol = -1.0
    else:
        mutation = "none"
    expect = {"wide": "tall", "b_shape": "B", "half": "float32 and float64", "neg_atol": "atol"}.get(mutation)
    A = torch.from_numpy(dense).to_sparse()
    cond = np.linalg.cond(dense) if not expect else 1.0
    kind = "invalid" if expect else ("valid" if cond < 1e4 else "grey")

    def call():
        return sparse_lstsq(A, B, atol=atol)

    def check(out):
        ref = np.linalg.lstsq(dense, B.numpy(), rcond=None)[0]
        return np.allclose(out.numpy(), ref, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(ref).max()))

    return kind, call, check, expect


GENERATORS = {"laplacian": case_laplacian, "laplacian_matvec": case_matvec, "sparse_solve": case_solve,
              "LaplacianPseudoInverse": case_pinv, "sparse_lstsq": case_lstsq}


# ------------------------------------------------------------------------------------------------ classify
def _alarm(signum, frame):
    raise Hang


def classify(kind, call, check, expect) -> str:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = call()
        inaccurate = any("inaccurate" in str(c.message) for c in caught)
    except Hang:
        return "hang"
    except (TypeError, ValueError, ConvergenceError) as exc:
        msg = str(exc)
        if kind == "invalid":
            return "clear error" if expect.lower() in msg.lower() and type(exc) is not ConvergenceError else \
                "unclear error"
        if kind == "grey" and (isinstance(exc, ConvergenceError) or "singular" in msg):
            return "clear error (grey: beyond precision/iterations)"
        return "valid input rejected"
    except Exception:  # any other exception type is unclear by definition
        return "unclear error"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if time.perf_counter() - start > HANG_S:
        return "hang"
    if kind == "invalid":
        return "bad input accepted"
    if check(out):
        return "correct result"
    if inaccurate:
        return "clear error (grey: warned inaccurate)"
    return "wrong result" if kind == "valid" else "wrong result (grey)"


def run_fuzz(cases: int, seed: int = 0):
    table: dict[str, Counter] = {name: Counter() for name in GENERATORS}
    failures = []
    names = list(GENERATORS)
    for i in range(cases):
        rng = np.random.default_rng([seed, i])
        name = names[i % len(names)]
        kind, call, check, expect = GENERATORS[name](rng)
        outcome = classify(kind, call, check, expect)
        table[name][outcome] += 1
        if outcome.split(" (")[0] in FAILURES:
            failures.append((i, name, kind, expect, outcome))
    return table, failures


def format_table(table) -> str:
    outcomes = sorted({o for c in table.values() for o in c})
    lines = ["| target | " + " | ".join(outcomes) + " |", "|---" * (len(outcomes) + 1) + "|"]
    for name, counts in table.items():
        lines.append(f"| {name} | " + " | ".join(str(counts.get(o, 0)) for o in outcomes) + " |")
    total = Counter()
    for counts in table.values():
        total.update(counts)
    lines.append("| **all** | " + " | ".join(str(total.get(o, 0)) for o in outcomes) + " |")
    return "\n".join(lines)


@pytest.mark.fuzz
def test_fuzz_linalg_has_no_failures():
    table, failures = run_fuzz(CASES)
    print(f"\nlinalg fuzz, {CASES} cases\n" + format_table(table))
    assert not failures, failures[:10]
