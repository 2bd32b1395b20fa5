"""Serve MathJax 3 with the site, so equations render without internet.

The es5 bundle comes from the PyPI package ``django-static-mathjax`` (import
name ``mathjax``). It is copied to ``<html>/_mathjax/`` after the build: not
under ``_static/``, because Jupyter Book 1 adds every ``.js`` file found
there to every page.
"""
from __future__ import annotations

import shutil
from pathlib import Path

BUNDLE = "tex-chtml-full.js"
FOLDER = "_mathjax"


def _es5() -> Path:
    import mathjax  # django-static-mathjax

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _configure(app, config):
    if not (_es5() / BUNDLE).is_file():
        raise RuntimeError(f"MathJax bundle missing at {_es5() / BUNDLE}; "
                           "pip install django-static-mathjax")
    # Sphinx puts a relative mathjax_path under _static/; step out of it.
    config.mathjax_path = f"../{FOLDER}/{BUNDLE}"


def _copy(app, exception):
    if exception is None and app.builder.format == "html":
        shutil.copytree(_es5(), Path(app.outdir) / FOLDER, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
