"""A sentence's claim fails the build in quick and full, and only warns in
smoke (whose numbers mean nothing by design)."""
from __future__ import annotations

import pytest

from autoencoders.book import ClaimError, ClaimWarning, claim, compared, strict_claims


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_a_violated_claim_fails_in_quick_and_full(monkeypatch, profile):
    monkeypatch.setenv("AUTOENCODERS_PROFILE", profile)
    assert strict_claims()
    assert claim(2 > 1, "two exceeds one", a=2, b=1)
    with pytest.raises(ClaimError, match=r"VQ-VAE reconstructions are sharper.*vq = 0\.1.*ae = 0\.2"):
        claim(0.1 > 0.2, "VQ-VAE reconstructions are sharper than the AE's", vq=0.1, ae=0.2)


def test_a_violated_claim_only_warns_in_smoke(monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    assert not strict_claims()
    with pytest.warns(ClaimWarning, match="smoke profile"):
        assert claim(False, "a sentence smoke numbers cannot support") is False


def test_a_violated_claim_stops_a_chapter_run(tmp_path, monkeypatch):
    """Run as a chapter runs it: a notebook cell whose claim is false raises,
    so nbclient (and so the book build, which raises on cell errors) fails."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("AUTOENCODERS_PROFILE", "quick")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from autoencoders.book import claim\n"
        "claim(0.3 < 0.2, 'the VAE is sharper than the AE', vae=0.3, ae=0.2)")])
    with pytest.raises(CellExecutionError, match="ClaimError"):
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()


@pytest.mark.parametrize("a, b, word", [
    (0.0040, 0.0050, "lower than"), (0.0060, 0.0050, "higher than"),
    (0.00505, 0.0050, "about the same as"), (0.00495, 0.0050, "about the same as"),
    (-3.0, -2.0, "lower than"), (-2.01, -2.0, "about the same as"),
    (5, 5, "about the same as")])
def test_compared_words_follow_the_numbers(a, b, word):
    assert compared(a, b) == word


def test_compared_tolerance_and_custom_words():
    assert compared(105, 100, within=0.1) == "about the same as"
    assert compared(105, 100, within=0.01) == "higher than"
    assert compared(1, 2, words=("fewer than", "as many as", "more than")) == "fewer than"
    with pytest.raises(ValueError, match="within"):
        compared(1, 2, within=-0.1)


def test_full_profile_note_says_what_full_adds_except_in_full(monkeypatch):
    from autoencoders.book import full_profile_note

    for profile in ("smoke", "quick"):
        assert full_profile_note("trains 25 epochs", profile=profile) == \
            "The full profile trains 25 epochs."
    note = full_profile_note("trains 25 epochs", profile="full")
    assert "25" not in note and "full profile" in note
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "full")
    assert full_profile_note("trains 25 epochs") == note
    with pytest.raises(ValueError, match="profile"):
        full_profile_note("x", profile="bogus")


def test_checked_claims_record_the_numbers_they_read(tmp_path, monkeypatch):
    """AUTOENCODERS_CLAIMS_RECORD: every checked claim appends its key,
    whether it held and exactly the numbers its test read."""
    import json

    from autoencoders.claims import Claim, check_claims

    record = tmp_path / "claims.jsonl"
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    monkeypatch.setenv("AUTOENCODERS_CLAIMS_RECORD", str(record))
    claims = (Claim("a", "a is small", lambda n: n["a"] < 1),
              Claim("b", "b exceeds a", lambda n: n["b"] > n["a"]))
    with pytest.warns(ClaimWarning):
        assert check_claims(claims, {"a": 2, "b": 3, "c": 4}) == {"a": False, "b": True}
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == [{"key": "a", "holds": False, "numbers": {"a": 2}},
                     {"key": "b", "holds": True, "numbers": {"b": 3, "a": 2}}]


def test_units_puts_the_noun_in_the_plural_unless_the_count_is_one():
    import numpy as np

    from autoencoders.book import units

    assert units(1, "active unit") == "1 active unit"
    assert units(1.0, "code") == "1 code" and units(np.int64(1), "code") == "1 code"
    assert units(0, "active unit") == "0 active units"
    assert units(16.0, "unit") == "16 units" and units(2.5, "nat") == "2.5 nats"
