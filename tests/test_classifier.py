"""The digit classifier and the pipeline that trains it on a VAE's output."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autoencoders import cache, data, experiments, metrics
from autoencoders.models import DigitClassifier
from autoencoders.train import fit


def test_classifier_shapes_and_it_fits_a_tiny_batch():
    torch.manual_seed(0)
    model = DigitClassifier((1, 28, 28))
    x = torch.rand(20, 1, 28, 28)
    y = torch.arange(20) % 10
    assert model(x).shape == (20, 10)
    assert model.features(x).shape == (20, model.feature_dim)
    before = model.loss_terms(x, y)["loss"].item()
    fit(model, x, y, epochs=30, batch_size=20, lr=3e-3, device="cpu", progress=False)
    after = model.loss_terms(x, y)
    assert after["loss"].item() < 0.2 * before
    assert after["accuracy"].item() == 1.0
    assert metrics.accuracy(model, x, y) == 1.0
    assert metrics.accuracy(model, (x * 255).round().to(torch.uint8), y) == 1.0
    with pytest.raises(ValueError):
        model.loss_terms(x)


def test_classifier_works_on_colour_images():
    assert DigitClassifier((3, 32, 32))(torch.rand(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", ["classifier-vae-recon", "classifier-vae-samples"])
def test_classifiers_train_on_vae_output_and_test_on_real_digits(name, fresh_cache):
    config = experiments.get_config(name, "smoke", epochs=1)
    train, test = cache.load_data(config)
    real_train = data.load("mnist", "train").subset(config.train_size)
    real_test = data.load("mnist", "test").subset(config.test_size)
    assert train.images.dtype == torch.uint8 and train.images.shape == real_train.images.shape
    assert torch.equal(train.labels, real_train.labels)          # labels kept
    assert not torch.equal(train.images, real_train.images)       # images replaced
    assert torch.equal(test.images, real_test.images)             # tested on real digits
    assert "vae-mnist" in train.source
    run = cache.get_or_train(config, progress=False)
    assert 0.0 <= run.metrics["test"]["accuracy"] <= 1.0


def test_code_label_agreement():
    codes = np.array([0, 0, 1, 1, 2, 2, 2])
    labels = np.array([3, 3, 5, 3, 5, 5, 1])
    agreement = metrics.code_label_agreement(codes, labels, codes, labels, num_codes=4,
                                             num_classes=6)
    assert agreement.majority_map[:3].tolist() == [3, 3, 5]
    assert agreement.majority_accuracy == pytest.approx(5 / 7)
    assert agreement.one_to_one_accuracy == pytest.approx(4 / 7)  # codes 1 and 2 cannot both be 5
    assert agreement.used_codes == 3


def test_the_vae_chapters_classifier_probe_runs(monkeypatch):
    from autoencoders.analysis import vae_mnist as analysis

    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    vae = analysis.vae_training()
    probe = analysis.classifier_probe(vae)
    assert set(probe.accuracy_pct) == set(probe.read_as_label_pct) == set(analysis.PROBES)
    assert all(0 <= v <= 100 for v in probe.accuracy_pct.values())
    for key in ("recon", "samples"):
        assert probe.gap_pct[key] == pytest.approx(probe.accuracy_pct["real"]
                                                   - probe.accuracy_pct[key])
        assert 0 < probe.made_mse[key] < 1 and probe.made_edges_pct[key] > 0
        assert probe.gap_se[key] >= 0
    assert probe.recon_minus_samples == pytest.approx(probe.accuracy_pct["recon"]
                                                      - probe.accuracy_pct["samples"])
    assert probe.total_seconds > sum(probe.seconds.values())
    n = probe.numbers()
    assert n["gap_se_recon"] == probe.gap_se["recon"] and n["edges_samples"] > 0


def test_paired_standard_error_of_two_shares_on_the_same_images():
    from autoencoders.analysis.vae_mnist import paired_se

    a = torch.tensor([True, True, False, False])
    b = torch.tensor([True, False, True, False])
    # per-image differences 0, 1, -1, 0: s.d. sqrt(2/3), over sqrt(4), in points
    assert paired_se(a, b) == pytest.approx(100 * (2 / 3) ** 0.5 / 2)
    # the same verdicts on every image: no uncertainty about the difference,
    # however uncertain each share is on its own
    assert paired_se(a, a) == 0
