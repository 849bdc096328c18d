"""Seeded fuzz of the GEM layers: valid inputs checked against a dense oracle, invalid ones must fail clearly.

Each case is classified as ``correct`` (valid input, result matches the dense oracle or, with probes, is finite and
aligned), ``clear error`` (invalid input, ``ValueError``/``TypeError`` naming the argument) or a failure (anything
else). The number of cases comes from ``PYG_EM_FUZZ_CASES`` (CI default below; ``make fuzz`` runs 2000).
"""

import math
import os
import random
import warnings

import pytest
import torch
import torch.nn.functional as F

from pyg_em.em import GEMImplicitEM, GEMUnrolledEM
from pyg_em.em.candidates import undirected_pairs
from tests.test_em_missing import observed_log_likelihood
from tests.test_em_oracle import dense_estep, dense_q

pytestmark = pytest.mark.fuzz
CASES = int(os.environ.get("PYG_EM_FUZZ_CASES", "60"))


def random_graph(rng: random.Random, num_nodes: int):
    edges = [(i, j) for i in range(num_nodes) for j in range(num_nodes) if i != j and rng.random() < 0.4]
    if not edges:
        edges = [(0, 1)]
    edge_index = torch.tensor(edges, dtype=torch.long).T
    if rng.random() < 0.3:  # repeated columns are merged, not rejected
        edge_index = torch.cat([edge_index, edge_index[:, :1]], dim=1)
    return edge_index


def oracle_one_layer(x, mask, edge_index, weight_columns, eta, eps, noise, estep):
    """One dense EM layer: softplus(theta + eta * dQ/dtheta) per column, with autograd on dense formulas."""
    num_nodes = x.size(0)
    pairs, edge_to_pair = undirected_pairs(edge_index, num_nodes)
    counts = torch.zeros(pairs.size(1), dtype=x.dtype).index_add(0, edge_to_pair, torch.ones_like(weight_columns))
    weight = torch.zeros(pairs.size(1), dtype=x.dtype).index_add(0, edge_to_pair, weight_columns) / counts
    theta = (weight + torch.log(-torch.expm1(-weight))).requires_grad_()
    if estep == "posterior":
        observed = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
        target = observed_log_likelihood(torch.where(observed, x, 0.0), observed, pairs, theta, eps, noise)
        grad = torch.autograd.grad(target, theta)[0]
    else:  # prior_covariance: Q with z = A^-1 x held fixed, no covariance term
        z_hat, _ = dense_estep(x, pairs, F.softplus(theta.detach()), eps, None)
        grad = torch.autograd.grad(dense_q(theta, z_hat, None, pairs, eps), theta)[0]
    return F.softplus(theta.detach() + eta * grad)[edge_to_pair]


def valid_case(rng: random.Random):
    num_nodes, num_features = rng.randint(3, 10), rng.randint(1, 4)
    edge_index = random_graph(rng, num_nodes)
    gen = torch.Generator().manual_seed(rng.randrange(2 ** 31))
    x = torch.randn(num_nodes, num_features, generator=gen, dtype=torch.float64) * rng.choice([0.1, 1.0, 10.0])
    weight = torch.rand(edge_index.size(1), generator=gen, dtype=torch.float64) * rng.choice([0.1, 1.0, 5.0]) + 0.05
    estep = rng.choice(["posterior", "posterior", "prior_covariance"])
    mask = None
    if estep == "posterior" and rng.random() < 0.5:
        mask = torch.rand(x.shape, generator=gen) < 0.7
        mask[0] = True
        if rng.random() < 0.5:  # NaN instead of a mask
            x, mask = x.masked_fill(~mask, float("nan")), None
    options = dict(eta=rng.choice([0.01, 0.1]), eps=rng.choice([1e-2, 0.1, 1.0]), noise=rng.choice([0.3, 1.0]),
                   estep=estep, logdet=rng.choice(["auto", "exact", "hutchinson"]))
    return x, mask, edge_index, weight, options


def check_valid(x, mask, edge_index, weight, options, implicit: bool) -> str:
    if implicit:
        layer = GEMImplicitEM(**options, prior=1.0, maxiter=300, tol=1e-9, strict=False)
    else:
        layer = GEMUnrolledEM(num_layers=1, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, z_hat = layer(x, edge_index, weight, generator=torch.Generator().manual_seed(0), mask=mask)
    finite = bool(torch.isfinite(out).all() and torch.isfinite(z_hat).all())
    if out.shape != (edge_index.size(1),) or z_hat.shape != x.shape or not finite:
        return f"failure: shape/finite ({tuple(out.shape)}, {finite})"
    if implicit or options["logdet"] == "hutchinson":
        return "correct"  # no closed form to compare (probes, or a fixed point): checked in the unit tests
    observed = mask if mask is not None else (~torch.isnan(x) if bool(torch.isnan(x).any()) else None)
    expected = oracle_one_layer(torch.nan_to_num(x), observed, edge_index, weight, options["eta"], options["eps"],
                                options["noise"], options["estep"])
    if torch.allclose(out, expected, rtol=1e-6, atol=1e-9):
        return "correct"
    return f"failure: wrong result (max error {float((out - expected).abs().max()):.2e})"


def invalid_case(rng: random.Random):
    """A bad input and the argument name the error must mention."""
    x = torch.randn(5, 2, dtype=torch.float64)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    kind = rng.randrange(14)
    layer_kwargs, call = {}, {"x": x, "edge_index": edge_index}
    if kind == 0:
        layer_kwargs, name = {"eta": rng.choice([-0.1, 0.0, float("nan"), True, "0.1"])}, "eta"
    elif kind == 1:
        layer_kwargs, name = {"eps": rng.choice([0.0, -1.0, float("inf")])}, "eps"
    elif kind == 2:
        layer_kwargs, name = {"logdet": rng.choice(["slq", "", None])}, "logdet"
    elif kind == 3:
        layer_kwargs, name = {"num_probes": rng.choice([0, -3, True, 2.5])}, "num_probes"
    elif kind == 4:
        layer_kwargs, name = {"estep": rng.choice(["map", "SEED", 3])}, "estep"
    elif kind == 5:
        layer_kwargs, name = {rng.choice(["etaa", "num_layer", "logdets"]): 1}, "hyper-parameter"
    elif kind == 6:
        call["edge_index"], name = edge_index.clone().index_fill_(1, torch.tensor([0]), 7), "edge_index"
    elif kind == 7:
        call["edge_index"], name = edge_index.double(), "edge_index"
    elif kind == 8:
        call["edge_index"], name = torch.tensor([[0, 1, 2], [0, 2, 1]]), "self loops"
    elif kind == 9:
        call["edge_weight"], name = -torch.rand(6, dtype=torch.float64) * rng.choice([0, 1]), "edge_weight"
    elif kind == 10:
        call["edge_weight"], name = torch.ones(rng.choice([5, 7]), dtype=torch.float64), "edge_weight"
    elif kind == 11:
        call["x"], name = x.clone().index_fill_(0, torch.tensor([1]), float("inf")), "x"
    elif kind == 12:
        call["mask"], name = torch.ones(rng.choice([(5, 3), (4, 2)]), dtype=torch.bool), "mask"
    else:
        layer_kwargs, name = {"estep": "prior_covariance"}, "estep"
        call["mask"] = torch.rand(5, 2) < 0.5
        call["mask"][0] = True
    return layer_kwargs, call, name


def check_invalid(layer_kwargs, call, name, implicit: bool) -> str:
    try:
        layer = (GEMImplicitEM if implicit else GEMUnrolledEM)(**layer_kwargs)
        layer(**call)
    except (ValueError, TypeError) as exc:
        return "clear error" if name.lower() in str(exc).lower() else f"failure: unclear error {exc!r} for {name}"
    except Exception as exc:  # noqa: BLE001 - classified, not swallowed: any other exception is a failure
        return f"failure: {type(exc).__name__}: {exc}"
    return f"failure: bad {name} accepted"


def test_fuzz_gem_layers():
    rng = random.Random(20251201)
    outcomes: dict[str, int] = {"correct": 0, "clear error": 0}
    failures = []
    for case in range(CASES):
        implicit = rng.random() < 0.25
        if rng.random() < 0.55:
            outcome = check_valid(*valid_case(rng), implicit=implicit)
        else:
            outcome = check_invalid(*invalid_case(rng), implicit=implicit)
        if outcome in outcomes:
            outcomes[outcome] += 1
        else:
            failures.append(f"case {case}: {outcome}")
    assert not failures, "\n".join(failures[:20])
    assert outcomes["correct"] > 0 and outcomes["clear error"] > 0
    assert sum(outcomes.values()) == CASES and math.isfinite(CASES)
