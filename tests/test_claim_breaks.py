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
    # autoencoders: the three layer types
    "ae-still-falling": [{"linear_drop": -0.2}, {"transformer_drop": -0.1}],
    "ae-linear-blurred": [{"linear_edge_pct": 55.0}, {"conv_edge_pct": 30.0}],
    "ae-linear-grainy": [{"linear_background": 0.01}, {"transformer_background": 0.05}],
    "ae-grain-not-blur": [{"blurred_background": 0.03}, {"blurred_edge_pct": 50.0}],
    "ae-grey-partly-training": [{"pca32_background": 0.05}, {"pca32_background": 0.012}],
    # the linear autoencoder against PCA
    "pca-spectrum-gap": [{"eig_ratio": 1.08}, {"nearby_ratio": 1.1}],
    "pca-agrees": [{"max_angle": 6.0}, {"gap_pct": -1.5}],
    "pca-rank-deficient-excluded": [{"drop_uk_pct": 1.0}, {"gap_pct": 0.5}],
    # vae_mnist: training, bounds, pictures, the classifier probe
    "vm-kl-rose": [{"kl_last": 8.0}, {"recon_last": 230.0}],
    "vm-recon-keep-identity": [{"read_recon": 75.0}],
    "vm-draw-near-mean": [{"draw_vs_mean_mse": 0.005}],
    "vm-samples-much-worse": [{"confident_samples": 75.0}, {"confident_recon": 60.0},
                              {"confident_samples": 70.0, "confident_recon": 90.0}],
    "vm-codes-cover-prior": [{"code_var_min": 0.3}, {"code_var_max": 3.0}],
    "vm-vae-made-misread": [{"read_recon": 95.5}, {"read_draw": 95.0}, {"read_se_recon": 2.0}],
    "vm-keeps-most-not-all": [{"gap_recon": 0.3}, {"acc_samples": 80.0},
                              {"gap_se_samples": 0.8}],
    "vm-made-smoother": [{"edges_recon": 95.0}, {"edges_samples": 100.0}],
    # score_function: the estimators
    # the other seeds' small-count ratios all on one side, or averaging off the prediction
    "sf-small-counts-scatter": [{"seeds_dev_min_pct": -5.0}, {"seeds_dev_max_pct": 5.0},
                                {"seeds_dev_mean_pct": 15.0}, {"seeds_dev_mean_pct": -15.0}],
    # a measured ratio (n >= 30) more than the stated tolerance from the prediction
    "sf-prediction-within-tolerance": [{"const_ratio_par_max": 14.8}, {"const_ratio_par_min": 11.5},
                                        {"pred_ratio_const": 15.0}],
    "dv-code-predicts-digit": [{"score_majority": 25.0}, {"score_one2one": 20.0}],
    "dv-code-partial": [{"score_majority": 93.0}],
    "dv-style-changes-digit": [{"grid_along": 1.5}, {"grid_along": 2.9}],
    # vqvae: the straight-through premise and the untrained codebook's start
    "vq-st-grad-aligned": [{"grad_cos": 0.4}, {"grad_cos_min": -0.1}],
    "pca-bias-curvature-below": [{"top_eig": 0.9}],
    "vq-init-far": [{"output_norm": 0.1}, {"projection_share": 0.8}, {"projection_top": 0.002}],
    "vq-ema-test-shares-fall": [{"ema_ppl": 75.0}, {"ema_late_geomean": 60.0}],
    "vq-st-grad-rough": [{"grad_rel_gap": 0.1}],
    "vq-init-aligned": [{"cosine": 0.5}, {"codes": 40}],
    # vqvae_generation: the prior, its samples, the bound, the three bottlenecks
    "gen-prior-beats-references": [{"bits": 6.9}, {"unigram_bits": 7.05}],
    "gen-prior-beats-position": [{"positional_bits": 4.4}, {"bits": 6.6}, {"seen_positional_bits": 4.4}],
    "gen-samples-arranged": [{"shuffled": 12.2}, {"pixelcnn": 13.8}, {"pixelcnn_se": 1.0}],
    "gen-samples-beat-random": [{"pixelcnn": 17.0}, {"pixelcnn": 15.8}, {"unigram": 16.5}],
    "gen-guide-order": [{"abl_vqvae_objective": 0.004}, {"mnist_vae_objective": 0.009}],
    "gen-vq-reconstructs-best": [{"abl_vqvae_mse": 0.012}, {"abl_vae_mse": 0.009}],
    "gen-vq-objective-below-vae": [{"abl_vae_objective": 0.01}],
    "gen-sharpness-order": [{"abl_vqvae_detail": 18.0}, {"abl_vae_detail": 22.0},
                            {"abl_ae_detail": 55.0, "abl_vqvae_detail": 60.0}],
    "gen-noise-limits-linear-code": [{"abl_linear_active": 128}, {"abl_vae_latent": 64}],
    # questions, Q1
    "q1-averaged-no-code": [{"avg_active": 1}, {"avg_kl": 0.05}],
    "q1-averaged-one-output": [{"avg_spread": 0.01}, {"sample_spread_ratio": 0.8}],
    "q1-summed-uses-code": [{"sum_active": 0}, {"sum_mse": 0.09},
                            {"sum_mse_sampled": 0.07}],
    # Q2
    "q2-kl-rose": [{"end_kl": 7.0}],
    "q2-total-fell": [{"end_recon": 250.0}, {"end_total": 250.0}],
    "q2-rate-pays": [{"end_recon": 180.0}, {"end_kl": 45.0}],
    # a code-free decoder reaching further down, or a start far above it
    "q2-fall-needs-code": [{"zero_rate": 150.0}, {"start_recon": 400.0}],
    # Q3
    # Q4: a small batch nearly as full as the whole set; a training batch as
    # full as it; a small batch fuller than a training one
    "q4-batch-count-overstates": [{"used_small": 124.0}, {"used_small": 127.0}],
    "q4-small-batch-understates": [{"ppl_small": 105.0}, {"ppl_largest": 100.0},
                                   {"whole": 125.0}, {"whole": 105.0}],
    # Q5: a run just under the in-use line (0.95 K = 121.6; the grey zone
    # starts at 0.90 K = 115.2), restarts under it, a tie for the most with none in use
    "q5-verdict-clear": [{"ema_used": 120}, {"restart_used": 118}, {"restart_used": 27}],
    # Q6
    "q6-argmax-repeats": [{"argmax_codes": 20.0}],
    "q6-argmax-likelier": [{"argmax_bits": 3.0}],
    "q6-temperature-trade": [{"t08_codes": 40.0}, {"t05_bits": 4.5}],
    # Q7
    "q7-unequal-content": [{"g16_bpi": 320.0}],
    # Q8
    "q8-column-collapsed": [{"column_max_active": 3}, {"column_max_kl": 1.2},
                            {"column_max_kl": 0.2}, {"linear_rate": 0.1}],
    "q8-column-at-mean-image": [{"column_max_mse_sampled": 0.075},
                                {"column_min_mse_sampled": 0.060}],
    "vm-codes-centred": [{"code_mean_absmax": 0.6}, {"code_m2_min": 0.3}, {"code_m2_max": 2.5}],
    "q8-column-short-of-optimum": [{"column_gain_pct": 2.0}, {"linear_gain_pct": 0.05}],
    "q8-16-collapsed": [{"none_active": 1}, {"none_kl": 0.3}],
    "q8-linear-optimum-small": [{"linear_active": 3}, {"linear_rate": 0.8}],
    "q8-warmup-falls-back": [{"warm_kl_end": 1.0}, {"warm_kl": 0.9}],
    "q8-smaller-weight-alive": [{"light_active": 0}],
    "q8-free-bits-alive": [{"free_active": 0}, {"free_mse": 0.05}, {"free_mse_sampled": 0.05},
                           {"free_kl": 0.8}],
    "q8-free-bits-code-costs": [{"free_objective": 0.06}, {"none_objective": 0.2}],
    # ablations (grid keys: grid_<key>_<row><column>; rows k = 512, 256, 128, 16, 2;
    # columns: the AE, then beta = 0.01, 0.001, 0.0001)
    "abl-pair-vae-worse": [{"ratio_mean": 0.95}, {"vae_above_every_epoch": 0}],
    "abl-pair-vae-blurrier": [{"edge_vae": 0.99, "edge_ae": 0.9}],
    "abl-pair-neighbours-close": [{"sep_nearest": 3.5}, {"sep_rms": 4.0},
                                  {"sigma_active": 0.2}],
    "abl-grid-collapsed": [{"collapse_units": 2}, {"kl_big_w_max": 0.8},
                           {"collapsed_spread_max": 0.05}],
    "abl-grid-weight-buys-nats": [{"grid_kl_22": 0.01}],
    "abl-grid-weight-buys-error": [{"grid_mse_33": 0.2}, {"grid_mse_33": 0.0205}],
    "abl-grid-length-above": [{"grid_kl_02": 100.0}, {"grid_kl_13": 120.0},
                              {"grid_mse_13": 0.0076, "grid_mse_03": 0.0080},
                              {"grid_mse_02": 0.025}],
    "abl-grid-length-binds": [{"grid_mse_42": 0.03}, {"grid_mse_43": 0.011},
                              {"grid_mse_12": 0.045}, {"grid_mse_03": 0.013}],
    "abl-grid-ae-length": [{"grid_mse_20": 0.5}, {"grid_mse_30": 0.008}],
    "abl-grid-ae-samples": [{"grid_fd_30": 200.0}, {"grid_fd_20": 400.0}],
    "abl-grid-samples-middle": [{"grid_fd_32": 500.0}, {"grid_fd_02": 1000.0}],
    "abl-grid-small-weight-prior": [{"grid_prior_fd_23": 0.04}, {"grid_prior_fd_42": 3.0}],
    "abl-grid-ae2-stuck": [{"ae2_mean_output": 0.12}, {"ae2_train_change": 0.01}],
    "abl-grid-wider-aes-escaped": [{"ae_out_16": 0.0}],
    "abl-den-clean-up": [{"den_ae_1": 1.0}, {"den_vae_3": 1.0}, {"den_vae_3": 0.07}],
    "abl-grid-length-limits-nats": [{"grid_kl_42": 10.0}, {"grid_kl_43": 40.0}],
    "abl-den-noise-matters-for-ae": [{"den_gain_vae": 100.0}, {"den_gain_ae": 1.8,
                                                              "den_gain_vae": 1.2}],
    "abl-den-vae-relative": [{"den_vae_3_rel": 100.0}],
    "abl-den-fewer-nats": [{"den_klmax": 1000.0}],
    "abl-den-errors-grow": [{"den_vae_1": 0.02}, {"den_ae_3": 0.01}],
    "abl-den-vae-higher-clean": [{"den_vae_0": 0.0}],
    "abl-den-shift": [{"den_shift_vae_sigma": 1.5}, {"den_shift_vae": 1.2}],
    "abl-layout-ae2-trained": [{"layout_ae_mean_output": 0.001}],
    "abl-layout-vae-nearer-prior": [{"layout_vae2_fd": 20.0}, {"layout_vae_fd": 1.0}],
    "abl-layout-ae-off-centre": [{"layout_ae2_centre": 3.0}, {"layout_ae2_moment": 1.2},
                                 {"layout_ae_moment": 1.5}, {"layout_ae_centre": 30.0}],
    "abl-pair-codes-shared": [{"sep_nearest_own": 2.0}, {"others_weight": 0.05},
                              {"others_most": 0.05}],
    "abl-layout-vae2-farther": [{"layout_vae2_fd": 0.01}],
    "abl-grid-collapsed-prior": [{"grid_prior_fd_21": 0.06}, {"grid_prior_fd_01": 0.03}],
    "abl-layout-long-units-differ": [{"width_vae_unit_own_median": 0.45},
                                     {"width_vae_unit_own_min": 0.6}],
    "abl-layout-long-wide": [{"width_vae_sigma": 0.6}, {"width_vae_own_share_min": 0.4}],
    "abl-layout-both-group": [{"layout_ae_same_label": 70.0}, {"layout_vae_same_label": 70.0}],
    "abl-layout-long-code-scale": [{"layout_vae_moment": 1.2}, {"layout_vae_centre": 2.0}],
    "abl-layout-vae2-narrow": [{"width_vae2_sigma": 0.6}],
    "abl-layout-units-share": [{"width_vae_ratio": 0.1}],
    "abl-layout-pca-scale": [{"layout_ae_pca_sd": 2.0}],
    "abl-samples-vae-better": [{"gen_vae_long_classifier_score": 0.0}, {"gen_fd_ratio_short": 0.5}],
    "abl-samples-longer-helps": [{"gen_vae_long_fd": 1e6}, {"gen_ae_long_fd": 300.0}],
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
