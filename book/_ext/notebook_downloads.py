"""Offer every chapter as a Jupyter notebook (.ipynb) in the page's download menu.

The chapters are MyST-markdown notebooks; sphinx-book-theme offers their
``.md`` source, and an ``.ipynb`` only when a launch service (Binder, Colab)
is configured. This extension converts each notebook page's source with
``jupytext`` into ``_sources/<page>.ipynb`` (without outputs: the reader runs
it) and tells the theme, which then lists it next to the ``.md``.
"""
from __future__ import annotations

from pathlib import Path


def _add_ipynb(app, pagename, templatename, context, doctree):
    source = Path(app.env.doc2path(pagename))
    if source.suffix != ".md" or "kernelspec:" not in source.read_text()[:600]:
        return  # a plain markdown page, not a notebook
    import jupytext

    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(jupytext.read(source), target, fmt="ipynb")
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    # before sphinx-book-theme builds the header buttons (default priority 500)
    app.connect("html-page-context", _add_ipynb, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
