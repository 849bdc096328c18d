"""Sphinx configuration for pyg_em (built with warnings as errors by `make docs`)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import pyg_em  # noqa: E402

project = "pyg_em"
author = "pyg_em developers"
release = pyg_em.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Types for the parameters a docstring documents (and the return type); internal helpers passed between the
# halves of an autograd Function stay out of the page.
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Every cross-reference must resolve (`make docs` also passes -n -W). There is no network, so no intersphinx:
# references to torch, PyG, NumPy/SciPy/scikit-learn and the standard library stay plain text, and only those
# external targets (plus napoleon's type words and ``:obj:`` literals such as default values) are exempt.
# Never add a pyg_em target here: document the object at its import path or fix the reference.
nitpicky = True
_EXTERNAL = r"(torch|torch_geometric|numpy|scipy|sklearn|matplotlib|pathlib|os|collections|argparse|datetime|typing)"
nitpick_ignore_regex = [
    (r"py:.*", _EXTERNAL + r"(\..*)?"),
    # Short names of external types in signatures and napoleon's type words.
    (r"py:class", r"(Tensor|Data|Module|Path|Generator|Figure|timedelta|optional|callable|sequence|iterable"
                  r"|array-like|array|sparse|ndarray|SparseTensor)"),
    # ``(default: :obj:`0.5`)`` and friends: literals, not objects.
    (r"py:obj", r"(True|False|None|[-+]?[0-9].*|'.*'|\".*\"|\{.*\}|\(.*\)|\[.*\])"),
    (r"py:class", r"('.*'|\".*\")"),
]
html_theme = "furo"
html_title = f"pyg_em {release}"
exclude_patterns = ["_build"]
