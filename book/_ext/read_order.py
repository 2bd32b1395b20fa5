"""Read (and so execute) some pages after all the others.

Sphinx reads source files in sorted order, and myst-nb executes a notebook
when it reads it. The results overview reads what the chapters trained from
the model cache, so it must run after every chapter: the pages named in the
config value ``read_last`` are moved to the end of the reading order.
"""
from __future__ import annotations


def _reorder(app, env, docnames):
    last = [d for d in app.config.read_last if d in docnames]
    for docname in last:
        docnames.remove(docname)
    docnames.extend(last)


def setup(app):
    app.add_config_value("read_last", [], "env")
    app.connect("env-before-read-docs", _reorder)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
