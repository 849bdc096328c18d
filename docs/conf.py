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
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Forward references and third-party types that autodoc cannot resolve are not worth a warning.
nitpicky = False
suppress_warnings = ["ref.python"]
html_theme = "furo"
html_title = f"pyg_em {release}"
exclude_patterns = ["_build"]
