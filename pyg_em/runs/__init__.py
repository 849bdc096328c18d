"""One function per method that the ``pyg-em run`` command can call.

Each runner takes ``(data, config)`` — a :class:`~torch_geometric.data.Data` and a :class:`RunConfig` — and
returns a :class:`RunResult`. The registry :data:`RUNNERS` maps method names to runners.

.. rubric:: How to plug a method in

1. Write ``run_<method>(data, config) -> RunResult`` in ``pyg_em/runs/<method>.py``:

   .. code-block:: python

       def run_daegc(data: Data, config: RunConfig) -> RunResult:
           opts = config.options({"lr": 5e-3, "gamma": 10.0})    # the [daegc] table of --config, type-checked
           model = DAEGC(data.num_features, n_clusters=default_n_clusters(data, config))
           trainer = Trainer(model, epochs=config.epochs or 200, lr=opts["lr"], device=config.device,
                             progress=config.progress, desc="daegc")
           history = trainer.fit(data)
           labels = model.predict(data)
           return RunResult(metrics=clustering_report(data, labels), history=history, labels=labels,
                            embedding=model.embed_data(data), timings={"fit_s": ...})

2. Add one line to :data:`RUNNERS` below (and the import).

.. rubric:: What the report draws from the result

What the report draws (each part appears only when its field is set):

- ``metrics`` (``dict[str, float]``): the printed table and ``report.json``'s ``metrics`` — always.
- ``history`` (``dict[str, list[float]]``, e.g. :meth:`~pyg_em.train.Trainer.fit`'s return value):
  ``losses.png``, one loss-curve panel per key (``total`` and each loss component; evaluation metrics are
  drawn at the epochs in ``history['eval_epoch']``).
- ``labels`` (``(N,)`` predicted clusters) together with ``data.y``: ``confusion.png`` (truth against
  Hungarian-matched prediction).
- ``embedding`` (``(N, D)`` tensor): ``embedding.png``, a 2-D PCA (or t-SNE, ``--embedding tsne``) coloured by
  prediction and by truth.
- ``timings`` (``dict[str, float]`` of seconds): printed and stored.

Pass ``config.progress`` to the :class:`~pyg_em.train.Trainer` so that ``pyg-em run`` shows an epoch bar;
honour ``config.epochs``, ``config.device``, ``config.seed``, ``config.batch_size`` (mini-batch training when
set) and ``config.n_clusters`` where they apply. Raise ``ValueError``/``TypeError`` with a clear message for
inputs the method cannot handle: the command turns them into an exit status 2 without a traceback.
"""

from pyg_em.runs.baselines import default_n_clusters, run_kmeans, run_spectral
from pyg_em.runs.common import ConfigError, RunConfig, RunResult, check_option_type, clustering_report
from pyg_em.runs.daegc import run_daegc
from pyg_em.runs.gae import run_gae, run_vgae
from pyg_em.runs.gem import run_gem

RUNNERS = {
    "kmeans": run_kmeans,
    "spectral": run_spectral,
    "gae": run_gae,
    "vgae": run_vgae,
    "daegc": run_daegc,
    "gem": run_gem,
}

__all__ = ["RUNNERS", "RunConfig", "RunResult", "ConfigError", "check_option_type", "clustering_report",
           "default_n_clusters"]
