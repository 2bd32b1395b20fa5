"""Execute the chapters side by side.

myst-nb executes a notebook while Sphinx reads it, one page after the other.
Before Sphinx reads, this extension calls the function named by
``execute_side_by_side_after`` ("module:function"; the book's trains every
model still missing, in the build process, with the training pool shared by
all chapters and its progress in the terminal). With nothing left to train,
a chapter is kernel start-up, imports, evaluation and drawing, so the
extension then executes the pages it is about to read in a pool of processes
(``execute_jobs``; 0, the default, means the CPU cores up to 4) and stores
each executed notebook in myst-nb's jupyter-cache, where myst-nb (in its
``cache`` execution mode) picks it up when it reads the page. The pages in
``read_last`` run after all the others.

Every page Sphinx reads is executed afresh: what an earlier build stored for
it is forgotten first. With fewer than two pages to read, ``execute_jobs: 1``,
a function that returns False, or a page that fails here, myst-nb executes
the page itself as it reads it, as without this extension, and reports any
failure with its traceback.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from pathlib import Path

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)


def _local_sockets(folder: str) -> dict:
    """Options that make a kernel talk to its manager over IPC sockets (files
    in ``folder``) instead of TCP on localhost. Nothing then travels over
    the network stack in plain text, and ipykernel has no reason to print
    its "Kernel is running over TCP without encryption" warning into the
    build log. Windows has no IPC transport: there the kernel keeps TCP."""
    if os.name != "posix":
        return {}
    from traitlets.config import Config

    return {"config": Config({"KernelManager": {"transport": "ipc",
                                                "ip": os.path.join(folder, "kernel")}})}


def _execute(notebook, cwd: str, timeout, allow_errors: bool, threads: int):
    """One notebook, in a worker process: (notebook, seconds, error text).
    Its kernel gets ``threads`` threads (OMP_NUM_THREADS, which torch and
    NumPy read), the cores shared out among the pages running at once,
    unless the reader has set OMP_NUM_THREADS."""
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ.setdefault("OMP_NUM_THREADS", str(threads))

    with tempfile.TemporaryDirectory(prefix="kernel-") as sockets:
        result = single_nb_execution(notebook, cwd=cwd, timeout=timeout,
                                     allow_errors=allow_errors, meta_override=True,
                                     **_local_sockets(sockets))
    return result.nb, result.time, result.exc_string if result.err is not None else None


def _notebooks(env, docnames) -> dict:
    """{docname: (path, notebook as myst-nb reads it)} of the pages that are notebooks."""
    from myst_nb.core.read import create_nb_reader

    found = {}
    for docname in docnames:
        path = str(env.doc2path(docname))
        content = Path(path).read_text(encoding="utf-8")
        reader = create_nb_reader(path, env.myst_config, env.mystnb_config, content)
        if reader is not None:
            found[docname] = (path, reader.read(content))
    return found


def _jobs(app) -> int:
    return app.config.execute_jobs or min(4, os.cpu_count() or 1)


def _prepared(app) -> bool:
    module, _, function = app.config.execute_side_by_side_after.partition(":")
    return bool(getattr(importlib.import_module(module), function)())


def _execute_pages(app, env, docnames):
    if env.mystnb_config.execution_mode != "cache" or not docnames:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(env.mystnb_config.execution_cache_path)
    pages = _notebooks(env, docnames)
    for _, notebook in pages.values():  # executed afresh, never reused
        with suppress(KeyError):
            cache.remove_cache(cache.match_cache_notebook(notebook).pk)
    jobs = min(_jobs(app), len(pages))
    if jobs < 2:
        return  # myst-nb executes each page as it reads it
    tick = time.perf_counter()
    ready = _prepared(app)
    LOGGER.info(f"prepared for side by side in {time.perf_counter() - tick:.1f} seconds")
    if not ready:
        return
    last = [d for d in app.config.read_last if d in pages]
    config = env.mystnb_config
    threads = max(1, (os.cpu_count() or 1) // jobs)
    LOGGER.info(f"executing {len(pages)} pages side by side ({jobs} processes)")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        for group in ([d for d in pages if d not in last], last):
            futures = {docname: pool.submit(_execute, pages[docname][1],
                                            str(Path(pages[docname][0]).parent),
                                            config.execution_timeout,
                                            config.execution_allow_errors, threads)
                       for docname in group}  # pages keeps Sphinx's reading order
            for docname, future in futures.items():
                try:
                    notebook, seconds, error = future.result()
                except Exception as err:  # a worker died: the page runs as it is read
                    notebook, seconds, error = None, 0.0, repr(err)
                if error is not None:
                    LOGGER.info(f"{docname}: failed side by side; it runs again as it is read")
                    continue
                cache.cache_notebook_bundle(
                    CacheBundleIn(notebook, pages[docname][0],
                                  data={"execution_seconds": seconds}),
                    check_validity=False, overwrite=True)
                LOGGER.info(f"{pages[docname][0]}: Executed notebook in {seconds:.2f} seconds "
                            "(side by side)")


def setup(app):
    app.add_config_value("execute_jobs", 0, "env")
    app.add_config_value("execute_side_by_side_after",
                         "autoencoders.parallel:train_everything", "env")
    # after read_order has put the read_last pages at the end (priority 500)
    app.connect("env-before-read-docs", _execute_pages, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
