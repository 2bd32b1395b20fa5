"""The build-time checks' stored results (autoencoders.derivations.verdicts):
a check that passed is not run again while the package's code and the
installed libraries are unchanged, and runs again when either changes, when
it failed, or when AUTOENCODERS_RECHECK is on."""
from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from autoencoders.derivations import verdicts
from autoencoders.derivations.checks import DerivationError

CALLS: list[str] = []


def counted_check() -> dict:
    CALLS.append("counted")
    return {"held": True, "calls": len(CALLS)}


def flaky_check() -> dict:
    CALLS.append("flaky")
    if CALLS.count("flaky") == 1:
        raise DerivationError("flaky", None, "the first call fails on purpose")
    return {"held": True}


@pytest.fixture(autouse=True)
def _fresh(fresh_cache, monkeypatch):
    CALLS.clear()
    monkeypatch.delenv("AUTOENCODERS_RECHECK", raising=False)
    verdicts.package_digest.cache_clear()
    verdicts.environment_digest.cache_clear()
    yield
    verdicts.package_digest.cache_clear()
    verdicts.environment_digest.cache_clear()


def test_a_passed_check_is_not_run_again():
    first = verdicts.remembered(counted_check)
    again = verdicts.remembered(counted_check)
    assert CALLS == ["counted"]
    assert again == first == {"held": True, "calls": 1}
    assert len(list((verdicts.settings.cache_root() / verdicts.FOLDER).glob("*.pkl"))) == 1


def test_run_checks_goes_through_the_store(monkeypatch):
    from autoencoders.derivations import build

    monkeypatch.setitem(build.CHAPTER_CHECKS, "vqvae", (counted_check,))
    assert build.run_checks("vqvae") == build.run_checks("vqvae") == {
        "counted_check": {"held": True, "calls": 1}}
    assert CALLS == ["counted"]


def test_a_failed_check_stores_nothing_and_runs_again():
    with pytest.raises(DerivationError):
        verdicts.remembered(flaky_check)
    assert not (verdicts.settings.cache_root() / verdicts.FOLDER).exists() or not list(
        (verdicts.settings.cache_root() / verdicts.FOLDER).glob("*.pkl"))
    assert verdicts.remembered(flaky_check) == {"held": True}
    assert CALLS == ["flaky", "flaky"]


def test_recheck_runs_it_again(monkeypatch):
    verdicts.remembered(counted_check)
    monkeypatch.setenv("AUTOENCODERS_RECHECK", "1")
    assert verdicts.remembered(counted_check)["calls"] == 2
    monkeypatch.setenv("AUTOENCODERS_RECHECK", "0")
    assert verdicts.remembered(counted_check)["calls"] == 2   # the new result was stored
    assert CALLS == ["counted", "counted"]


def test_an_unreadable_stored_result_is_ignored():
    verdicts.remembered(counted_check)
    verdicts._path(counted_check).write_bytes(b"not a pickle")
    assert verdicts.remembered(counted_check)["calls"] == 2


def test_editing_any_package_file_changes_the_digest(tmp_path):
    copy = tmp_path / "autoencoders"
    shutil.copytree(verdicts.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = verdicts.package_digest(copy)
    assert before == verdicts.package_digest(verdicts.PACKAGE)
    deep = copy / "metrics" / "codebook.py"          # a file far from derivations/
    deep.write_text(deep.read_text() + "\n# an edit\n")
    verdicts.package_digest.cache_clear()
    assert verdicts.package_digest(copy) != before


def test_a_changed_package_or_library_changes_the_key(monkeypatch):
    base = verdicts.key(counted_check)
    verdicts.remembered(counted_check)
    real_digest = verdicts.package_digest
    monkeypatch.setattr(verdicts, "package_digest", lambda: "an edited package")
    assert verdicts.key(counted_check) != base
    assert verdicts.remembered(counted_check)["calls"] == 2
    monkeypatch.setattr(verdicts, "package_digest", real_digest)
    assert verdicts.key(counted_check) == base

    real = list(verdicts.importlib.metadata.distributions())
    torch_dist = next(d for d in real if (d.metadata["Name"] or "").lower() == "torch")
    bumped = SimpleNamespace(metadata={"Name": "torch"}, version=torch_dist.version + ".post1")
    monkeypatch.setattr(verdicts.importlib.metadata, "distributions",
                        lambda: [d for d in real if d is not torch_dist] + [bumped])
    verdicts.environment_digest.cache_clear()
    assert verdicts.key(counted_check) != base
    assert verdicts.remembered(counted_check)["calls"] == 3
    assert CALLS == ["counted"] * 3


def test_a_read_only_cache_still_returns_the_result(monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(verdicts, "atomic_open", refuse)
    assert verdicts.remembered(counted_check)["calls"] == 1
    assert verdicts.remembered(counted_check)["calls"] == 2


def test_run_checks_stored_false_runs_every_check(monkeypatch):
    from autoencoders.derivations import build

    monkeypatch.setitem(build.CHAPTER_CHECKS, "vae_theory", (counted_check,))
    build.run_checks("vae_theory")                           # stores it
    assert build.run_checks("vae_theory", stored=False)["counted_check"]["calls"] == 2
    assert build.run_checks("vae_theory")["counted_check"]["calls"] == 1   # the stored one
