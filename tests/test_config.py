"""Config validation and profiles."""
from __future__ import annotations

import dataclasses

import pytest

from autoencoders import cache, data, experiments
from autoencoders.config import current_profile
from autoencoders.config import Config
from autoencoders.experiments import get_config


@pytest.mark.parametrize("field, value", [
    ("latent_dim", -4), ("latent_dim", 0), ("latent_dim", 2.5),
    ("noise_weight", 1.5), ("noise_weight", -0.1),
    ("kl_weight", -1e-3), ("kl_weight", float("nan")),
    ("model", "gan"), ("dataset", "svhn"), ("arch", "mlp"),
    ("likelihood", "poisson"), ("epochs", 0), ("batch_size", -1),
    ("lr", 0.0), ("train_size", 0), ("profile", "huge"),
])
def test_a_bad_value_names_its_field_before_any_data_loads(field, value, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("data was loaded before validation")

    monkeypatch.setattr(data, "load", no_loading)
    with pytest.raises(ValueError, match=field):
        Config(**{"name": "t", "model": "vae", field: value})
    with pytest.raises(ValueError, match=field):  # overriding a named experiment
        config = get_config("ae-conv", "smoke")
        cache.get_or_train(dataclasses.replace(config, **{field: value}))


def test_valid_config_round_trips():
    config = get_config("vae-mnist", "smoke")
    assert config.profile == "smoke" and config.epochs == 1 and config.train_size == 512
    assert Config(**config.to_dict()) == config
    assert cache.config_key(config) == cache.config_key(Config(**config.to_dict()))
    assert cache.config_key(config) != cache.config_key(get_config("vae-mnist", "quick"))


def test_unknown_experiment_lists_the_known_ones():
    with pytest.raises(ValueError, match="ae-conv"):
        get_config("no-such-thing")


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    assert get_config("ae-conv").profile == "smoke"
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "warp-speed")
    with pytest.raises(ValueError, match="AUTOENCODERS_PROFILE"):
        current_profile()
    monkeypatch.delenv("AUTOENCODERS_PROFILE")
    import torch
    assert current_profile() == ("full" if torch.cuda.is_available() else "quick")


def test_full_profile_uses_the_guides_25_epochs_on_mnist():
    assert get_config("ae-conv", "full").epochs == 25


# Fields that say what a run records or is called, not what it learns: two
# experiments equal in every other field train the same weights (the epoch
# evaluation runs in eval mode under its own RNG; test_questions checks that).
NOT_TRAINING = {"name": "same", "epoch_eval": 0}


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_no_two_experiments_train_the_same_model(profile):
    trained: dict = {}
    for name in experiments.EXPERIMENTS:
        config = dataclasses.replace(get_config(name, profile), **NOT_TRAINING)
        assert config not in trained, (
            f"{name} and {trained.get(config)} train the same model in {profile}: "
            "register it once and let both chapters read it")
        trained[config] = name
