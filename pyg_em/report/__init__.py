"""Reports of a run: metrics table, ``report.json`` and PNG plots (loss curves, 2-D embedding, confusion)."""

from pyg_em.report.outputs import read_assignments, write_assignments, write_link_scores
from pyg_em.report.plots import (
    EMBEDDING_METHODS,
    plot_confusion,
    plot_embedding,
    plot_history,
    project_2d,
    save_figure,
    write_plots,
)
from pyg_em.report.summary import format_table, library_versions, to_jsonable, write_report

__all__ = ["plot_history", "plot_embedding", "plot_confusion", "project_2d", "save_figure", "write_plots",
           "EMBEDDING_METHODS", "format_table", "library_versions", "to_jsonable", "write_report",
           "write_assignments", "read_assignments", "write_link_scores"]
