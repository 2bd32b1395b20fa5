"""A sentence's claim fails the build in quick and full, and only warns in
smoke (whose numbers mean nothing by design)."""
from __future__ import annotations

import pytest

from autoencoders.book import ClaimError, ClaimWarning, claim, strict_claims


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
