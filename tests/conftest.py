"""Shared test set-up.

The data variables default to the offline copies beside the repository
(``../shared/data``), as in CI; the artifact cache defaults to a fresh folder
per test session, so tests never read a developer's cache.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

if not os.environ.get("AUTOENCODERS_DATA") and SHARED_DATA.is_dir():
    os.environ["AUTOENCODERS_DATA"] = str(SHARED_DATA)
    os.environ.setdefault("AUTOENCODERS_OFFLINE", "1")
os.environ.setdefault("AUTOENCODERS_PROGRESS", "0")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    if not os.environ.get("AUTOENCODERS_CACHE"):
        os.environ["AUTOENCODERS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty artifact cache for one test."""
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def _forget_loaded_data():
    """``data.load`` keeps each split in memory for the process; a test that
    changes the data settings or patches a loader must see a fresh read."""
    from autoencoders import data

    data._LOADED.clear()
    yield
    data._LOADED.clear()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (the system's), driven by playwright; for the
    browser tests (marked slow)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: apt-get install chromium")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        yield browser
        browser.close()
