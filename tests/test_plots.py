"""Report figures and files: confusion matrix counts, embedding panels, loss curves, JSON output."""

import json
import math

import matplotlib.image
import numpy as np
import pytest
import torch

from pyg_em.report import (
    format_table,
    plot_confusion,
    plot_embedding,
    plot_history,
    project_2d,
    save_figure,
    to_jsonable,
    write_plots,
    write_report,
)


def test_confusion_matrix_is_diagonal_after_matching():
    truth = [0, 0, 1, 1, 1, 2, 2]
    pred = [5, 5, 3, 3, 3, 4, 4]  # a relabelling of truth
    fig = plot_confusion(truth, pred)
    fractions = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(fractions, np.eye(3))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["2", "0", "0", "0", "3", "0", "0", "0", "2"]
    assert "accuracy 1.000" in fig.axes[0].get_title()


def test_confusion_matrix_puts_surplus_clusters_in_unmatched_column():
    # PyAGC's pitfall from the guide: this partition must not look perfect.
    truth = [0, 0, 0, 0, 1, 1, 1, 1]
    pred = [2, 2, 2, 2, 0, 0, 1, 1]
    fig = plot_confusion(truth, pred)
    ax = fig.axes[0]
    counts = np.asarray(ax.images[0].get_array())
    assert counts.shape == (2, 3)
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "unmatched"
    np.testing.assert_allclose(counts[1], [0.0, 0.5, 0.5])  # class 1: half matched, half unmatched
    assert "accuracy 0.750" in ax.get_title()


def test_project_2d_shapes_and_errors():
    x = torch.randn(40, 5, generator=torch.Generator().manual_seed(0))
    assert project_2d(x).shape == (40, 2)
    assert project_2d(x, "tsne").shape == (40, 2)
    line = project_2d(torch.arange(6.0).view(6, 1))
    np.testing.assert_allclose(line[:, 1], 0.0)
    with pytest.raises(ValueError, match="method must be one of"):
        project_2d(x, "umap")
    with pytest.raises(ValueError, match="NaN"):
        project_2d(torch.full((4, 3), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        project_2d(torch.randn(5))


def test_embedding_colours_predictions_by_matched_class():
    emb = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    truth = torch.tensor([0, 0, 1, 1])
    fig = plot_embedding(emb, pred=torch.tensor([1, 1, 0, 0]), truth=truth)
    pred_ax, truth_ax = fig.axes
    assert pred_ax.get_title().startswith("prediction") and truth_ax.get_title() == "truth"
    # The matched prediction equals the truth, so both panels draw the same groups with the same colours.
    for a, b in zip(pred_ax.collections, truth_ax.collections):
        np.testing.assert_allclose(a.get_offsets(), b.get_offsets())
        np.testing.assert_allclose(a.get_facecolor(), b.get_facecolor())
    assert len(plot_embedding(emb, truth=truth).axes) == 1
    assert len(plot_embedding(emb).axes) == 1


def test_class_colour_is_the_same_in_both_panels_when_a_class_is_missing():
    emb = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    truth = torch.tensor([0, 0, 1, 1, 2, 2])
    fig = plot_embedding(emb, pred=torch.tensor([7, 7, 7, 7, 4, 4]), truth=truth)
    pred_ax, truth_ax = fig.axes
    colours = [{t.get_text(): tuple(h.get_facecolor()[0]) for t, h in
                zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)} for ax in (pred_ax, truth_ax)]
    assert "2" in colours[0] and len(colours[0]) == 2  # cluster 4 is matched to class 2; class 0 or 1 is absent
    for name, colour in colours[0].items():
        assert colours[1][name] == colour


def test_negative_truth_is_rejected_by_the_confusion_matrix(tmp_path):
    with pytest.raises(ValueError, match="non-negative"):
        plot_confusion([-1, 0, 1], [0, 1, 1])
    with pytest.warns(UserWarning, match="negative ids"):
        assert write_plots(tmp_path, labels=[0, 1, 1], truth=[-1, 0, 1]) == {}


def test_embedding_subsamples_large_inputs():
    fig = plot_embedding(torch.randn(300, 3), truth=torch.arange(300) % 3, max_points=50)
    drawn = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert drawn == 50 and "50 nodes" in fig.get_suptitle()


def test_history_panels_and_eval_axis():
    history = {"total": [4.0, 3.0, 2.0, 1.0], "recon": [1e4, 1e2, 1.0, 1e-2], "acc": [0.5, 0.9],
               "eval_epoch": [1.0, 3.0]}
    fig = plot_history(history)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["total", "recon", "acc"]
    by_title = {ax.get_title(): ax for ax in fig.axes}
    np.testing.assert_allclose(by_title["total"].lines[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(by_title["acc"].lines[0].get_xdata(), [2, 4])  # 1-based epochs of evaluation
    assert by_title["recon"].get_yscale() == "log" and by_title["total"].get_yscale() == "linear"
    assert plot_history({}) is None and plot_history({"total": []}) is None


def test_write_plots_writes_valid_pngs_and_skips_what_is_missing(tmp_path):
    truth = torch.arange(60) % 3
    emb = torch.randn(60, 4) + 3 * torch.nn.functional.one_hot(truth, 4).float()
    written = write_plots(tmp_path, history={"total": [3.0, 2.0, 1.0]}, labels=truth.flip(0), embedding=emb,
                          truth=truth)
    assert sorted(written) == ["confusion", "embedding", "losses"]
    for path in written.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000
        assert matplotlib.image.imread(path).shape[2] in (3, 4)
    assert write_plots(tmp_path / "none", labels=truth) == {}  # no truth: no confusion matrix
    with pytest.warns(UserWarning, match="NaN or infinite"):
        assert write_plots(tmp_path / "nan", embedding=torch.full((5, 2), math.inf)) == {}


def test_save_figure_creates_folder(tmp_path):
    path = save_figure(plot_confusion([0, 1], [1, 0]), tmp_path / "a" / "b.png", dpi=50)
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"


def test_summary_table_and_strict_json(tmp_path):
    table = format_table({"acc": 0.5, "nmi": 1 / 3})
    assert table.splitlines() == ["metric   value", "------  ------", "acc     0.5000", "nmi     0.3333"]
    value = to_jsonable({"t": torch.tensor([1.5, float("nan")]), "n": np.float32(2.0), "i": np.int64(3),
                         "bad": float("inf"), 1: (1, 2)})
    assert value == {"t": [1.5, None], "n": 2.0, "i": 3, "bad": None, "1": [1, 2]}
    path = write_report(tmp_path / "r" / "report.json", {"metrics": {"acc": float("nan")}})
    assert json.loads(path.read_text()) == {"metrics": {"acc": None}}
