"""Every build-time claim can fail.

Each claim of the book (an ``autoencoders.claims.Claim`` declared in an
analysis module, in a tuple whose name ends in ``_CLAIMS``) must hold on the
numbers a real ``quick`` build gave it (``tests/data/claim-numbers.json``,
written by ``tools/claim-snapshot.py``), and must fail when those numbers are
changed the way the sentence denies: :data:`BREAKS` records, for every claim,
at least one such change. A claim that no change of its numbers can make
fail checks nothing about the build, and a new claim without a break fails
:func:`test_every_claim_has_a_snapshot_and_a_break`.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest

import autoencoders.analysis
from autoencoders.claims import Claim

SNAPSHOT = json.loads((Path(__file__).parent / "data" / "claim-numbers.json").read_text())


def registered_claims() -> dict[str, Claim]:
    """key -> claim, from every ``*_CLAIMS`` tuple of every analysis module."""
    found: dict[str, Claim] = {}
    for info in pkgutil.iter_modules(autoencoders.analysis.__path__):
        module = importlib.import_module(f"autoencoders.analysis.{info.name}")
        for name, value in vars(module).items():
            if name.endswith("_CLAIMS"):
                for claim in value:
                    assert isinstance(claim, Claim), f"{info.name}.{name} holds {claim!r}"
                    assert claim.key not in found, f"claim key {claim.key!r} declared twice"
                    found[claim.key] = claim
    return found


CLAIMS = registered_claims()

# claim key -> the changes of its numbers under which its sentence is false
# (each dict is applied to the snapshot on its own; every one must make the
# claim fail)
BREAKS: dict[str, list[dict]] = {
    # questions, Q1
    "q1-averaged-no-code": [{"avg_active": 1}, {"avg_kl": 0.05}],
    "q1-averaged-one-output": [{"avg_spread": 0.01}, {"sample_spread_ratio": 0.8}],
    "q1-summed-uses-code": [{"sum_active": 0}, {"sum_mse": 0.09}],
    # Q2
    "q2-kl-rose": [{"end_kl": 7.0}],
    "q2-total-fell": [{"end_recon": 250.0}, {"end_total": 250.0}],
    "q2-rate-pays": [{"end_recon": 180.0}, {"end_kl": 45.0}],
    # Q4
    "q4-batch-count-overstates": [{"used_train": 128.0}],
    # Q5
    "q5-restarts-most": [{"ema_used": 128.5}, {"kmeans_used1": 120.0}],
    # Q6
    "q6-argmax-repeats": [{"argmax_codes": 40.0}, {"argmax_top": 0.3}],
    "q6-argmax-likelier": [{"argmax_bits": 3.0}],
    "q6-temperature-trade": [{"t08_codes": 40.0}, {"t05_bits": 4.5}],
    # Q7
    "q7-prior-below-capacity": [{"g8_bpi": 500.0}, {"g16_bpi": 480.0}],
    "q7-unequal-content": [{"g16_bpi": 320.0}],
    # Q8
    "q8-column-collapsed": [{"column_max_active": 1}, {"column_max_kl": 1.2}],
    "q8-linear-optimum-small": [{"linear_active": 3}, {"linear_rate": 0.8}],
    "q8-warmup-falls-back": [{"warm_kl_end": 1.0}, {"warm_kl": 0.9}],
    "q8-smaller-weight-alive": [{"light_active": 0}],
    "q8-free-bits-alive": [{"free_active": 0}, {"free_mse": 0.05}],
    # ablations (grid keys: grid_<key>_<row><column>; rows k = 512, 256, 128, 16, 2;
    # columns: the AE, then beta = 0.01, 0.001, 0.0001)
    "abl-pair-vae-worse": [{"ratio_mean": 0.95}, {"vae_above_every_epoch": 0}],
    "abl-pair-vae-blurrier": [{"edge_vae": 0.99, "edge_ae": 0.9}],
    "abl-grid-collapsed": [{"collapse_units": 1}, {"kl_big_w_max": 2.0},
                           {"collapsed_spread_max": 0.05}],
    "abl-grid-no-better-than-mean": [{"collapsed_mse_min": 0.0670, "mean_image_mse": 0.0676}],
    "abl-grid-weight-buys-nats": [{"grid_kl_22": 0.01}],
    "abl-grid-weight-buys-error": [{"grid_mse_33": 0.2}],
    "abl-grid-length-above": [{"grid_kl_02": 100.0}, {"grid_mse_12": 0.05}],
    "abl-grid-length-binds": [{"grid_mse_42": 0.0001}, {"grid_mse_33": 0.0001}],
    "abl-grid-ae-length": [{"grid_mse_20": 0.5}],
    "abl-grid-ae-samples": [{"grid_fd_30": 0.0001}],
    "abl-grid-ae2-stuck": [{"ae2_mean_output": 0.12}],
    "abl-grid-wider-aes-escaped": [{"ae_out_16": 0.0}],
    "abl-den-clean-up": [{"den_ae_1": 1.0}, {"den_vae_3": 1.0}],
    "abl-den-noise-matters-for-ae": [{"den_gain_vae": 100.0}],
    "abl-den-vae-relative": [{"den_vae_3_rel": 100.0}],
    "abl-den-fewer-nats": [{"den_klmax": 1000.0}],
    "abl-den-vae-higher-clean": [{"den_vae_0": 0.0}],
    "abl-samples-vae-better": [{"gen_vae_long_classifier_score": 0.0}, {"gen_fd_ratio_short": 0.5}],
    "abl-samples-confidence-weaker": [{"gen_vae_long_confidence": 100.0}],
    "abl-samples-longer-helps": [{"gen_vae_long_fd": 1e6}],
    "abl-samples-fit-closer": [{"gen_ae_fit_long_fd": 1e6}],
    "abl-samples-fit-score": [{"gen_ae_fit_long_classifier_score": 100.0}],
}


def test_every_claim_has_a_snapshot_and_a_break():
    assert sorted(set(CLAIMS) - set(SNAPSHOT)) == [], "claims without snapshot numbers " \
        "(run a quick build with AUTOENCODERS_CLAIMS_RECORD and tools/claim-snapshot.py)"
    assert sorted(set(CLAIMS) - set(BREAKS)) == [], "claims without a recorded break"
    assert sorted(set(BREAKS) - set(CLAIMS)) == [], "breaks of claims that no longer exist"


@pytest.mark.parametrize("key", sorted(CLAIMS))
def test_the_claim_holds_on_a_real_builds_numbers(key):
    held, read = CLAIMS[key].holds(SNAPSHOT[key])
    assert held, f"{key} does not hold on its snapshot {read}"


@pytest.mark.parametrize("key, change", [(key, change) for key, changes in sorted(BREAKS.items())
                                         for change in changes])
def test_the_claim_fails_when_its_numbers_deny_the_sentence(key, change):
    unknown = set(change) - set(SNAPSHOT[key])
    assert not unknown, f"{key}: the break changes numbers the claim never read: {unknown}"
    held, read = CLAIMS[key].holds({**SNAPSHOT[key], **change})
    assert not held, f"{key} still holds after {change}: {read}"
