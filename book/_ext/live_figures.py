"""Where the live figures' data files go: beside the built pages.

A chapter's live figure (``autoencoders.export``) writes its decoders'
weights into the folder named by ``AUTOENCODERS_LIVE_FIGURES``. Before any
page is read (and so executed), this extension points that variable at
``<html>/_static/live/``, next to the script that reads them
(``book/_static/live_figures.js``); the kernels inherit it. Sphinx copies
``book/_static`` into the same ``_static`` folder at the end of the build
and leaves the data files there.
"""
from __future__ import annotations

import os
from pathlib import Path


def _point_exports_here(app):
    from autoencoders.settings import LIVE_FIGURES_ENV  # not .export: it imports torch

    if app.builder.format == "html":
        folder = Path(app.outdir) / "_static" / "live"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[LIVE_FIGURES_ENV] = str(folder)


def setup(app):
    app.connect("builder-inited", _point_exports_here)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
