"""The live figures: decoders exported by ``autoencoders.export`` and run in
the page by ``book/_static/live_figures.js``.

The export is checked in Python (the exported layer list, rebuilt as
PyTorch layers, is the model's decoder; what it refuses). The browser tests
load a small harness page, the same script and style sheet as the book with
the data files of smoke-profile models, from ``file://`` in headless
Chromium, and compare what the page draws with PyTorch's decoder
(tests/live_checks.py; tests/test_book.py runs the same checks on the
built book's pages).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import live_checks
from autoencoders import export, inference
from autoencoders.models.autoencoder import Autoencoder
from autoencoders.models.vae import VAE

REPO = Path(__file__).resolve().parents[1]
STATIC = REPO / "book" / "_static"
MNIST = (1, 28, 28)


def _seeded(cls, *args, **kwargs):
    torch.manual_seed(0)
    return cls(MNIST, *args, **kwargs)


# ------------------------------------------------------------- the export
@pytest.mark.parametrize("model, k", [(_seeded(Autoencoder, 2), 2), (_seeded(VAE, 16), 16)])
def test_the_exported_layers_are_the_models_decoder(model, k):
    payload = export.decoder_payload(model, k)
    assert [layer["op"] for layer in payload["layers"]] == [
        "linear", "relu", "unflatten", "conv_transpose", "relu", "conv_transpose", "sigmoid"]
    z = 4 * torch.randn(50, k, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.allclose(export.rebuild_decoder(payload)(z), model.eval().decode(z),
                              atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", ["linear", "transformer"])
def test_a_decoder_the_page_cannot_run_is_refused(arch):
    with pytest.raises(export.ExportError, match="decoder"):
        export.decoder_payload(_seeded(VAE, 4, arch=arch), 4)


@pytest.mark.parametrize("wrong", [{"stride": [1, 1]}, {"bias": None},
                                   {"padding": [0, 0], "output_padding": [0, 0], "stride": [2, 2],
                                    "kernel": [2, 2]}])
def test_the_export_check_catches_a_layer_list_that_is_not_the_decoder(monkeypatch, wrong):
    """A transposed convolution exported wrongly (the page would draw
    another image) fails the export instead of reaching a page."""
    original = export._layer

    def mistaken(module, tensors):
        layer = original(module, tensors)
        return {**layer, **wrong} if layer["op"] == "conv_transpose" else layer

    monkeypatch.setattr(export, "_layer", mistaken)
    with pytest.raises(export.ExportError, match="does not reproduce"):
        export.decoder_payload(_seeded(Autoencoder, 2), 2)


def _fake_run(name, model, k):
    return SimpleNamespace(config=SimpleNamespace(name=name, latent_dim=k), model=model)


def test_data_files_are_written_only_where_the_build_asks(tmp_path, monkeypatch):
    run = _fake_run("toy-ae", _seeded(Autoencoder, 2), 2)
    codes = {"toy": torch.randn(300, 2).numpy()}
    labels = torch.arange(300) % 10
    monkeypatch.delenv(export.ASSETS_ENV, raising=False)
    figure = export.latent_explorer({"toy": run}, codes, labels)
    assert not figure.written and figure.files["toy-ae.js"] > 0
    assert 'data-model="toy-ae"' in figure.html and 'alt="' in figure.html
    monkeypatch.setenv(export.ASSETS_ENV, str(tmp_path / "live"))
    figure = export.latent_explorer({"toy": run}, codes, labels)
    written = tmp_path / "live" / "toy-ae.js"
    assert figure.written and written.stat().st_size == figure.files["toy-ae.js"]
    assert "LiveFigures.register(" in written.read_text()
    with pytest.raises(ValueError, match="2-number codes"):
        export.latent_explorer({"toy": _fake_run("toy-vae", _seeded(VAE, 3), 3)},
                               {"toy": torch.randn(300, 3).numpy()}, labels)


def test_the_explorers_fallback_titles_say_it_shows_decoded_images(monkeypatch):
    """The fallback picture is a grid of decoded images, not the scatter of
    codes the live panel shows: its panel titles must not read as codes."""
    seen = {}
    real = export.plots.decoded_lattice

    def record(panels, n, **kwargs):
        seen["titles"] = list(panels)
        return real(panels, n, **kwargs)

    monkeypatch.setattr(export.plots, "decoded_lattice", record)
    monkeypatch.delenv(export.ASSETS_ENV, raising=False)
    run = _fake_run("toy-ae", _seeded(Autoencoder, 2), 2)
    export.latent_explorer({"VAE, posterior means": run}, {"VAE, posterior means":
                                                           torch.randn(300, 2).numpy()},
                           torch.arange(300) % 10, lattice=3)
    assert seen["titles"] == ["VAE, posterior means: decoder output"]


# ----------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """A page with both live figures of smoke-profile models (the book's
    architectures), beside a copy of book/_static; its path and the models."""
    from autoencoders.analysis import vae_mnist
    from autoencoders.cache import get_or_train, load_data

    site = tmp_path_factory.mktemp("site")
    shutil.copytree(STATIC, site / "_static")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOENCODERS_PROFILE", "smoke")
        mp.setenv(export.ASSETS_ENV, str(site / "_static" / "live"))
        runs = {"AE": get_or_train("abl-ae-z2-long"), "VAE": get_or_train("abl-vae-z2-kl0.001-long")}
        _, test = load_data(runs["AE"].config)
        codes = {"AE": inference.encode(runs["AE"].model, test.images).numpy(),
                 "VAE": inference.encode(runs["VAE"].model, test.images)[0].numpy()}
        explorer = export.latent_explorer(runs, codes, test.labels)
        vae = vae_mnist.vae_training()
        walk = vae_mnist.traversal(vae)
        traversal = export.latent_traversal(vae.run, walk.digits, walk.labels, walk.means,
                                            walk.units, walk.spreads)
    page = site / "page.html"
    page.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>live figures</title>'
        '<link rel="stylesheet" href="_static/book.css">'
        '<script src="_static/live_figures.js"></script></head>'
        f'<body><main>{explorer.html}{traversal.html}</main></body></html>')
    models = {run.config.name: run.model for run in (*runs.values(), vae.run)}
    return SimpleNamespace(page=page, models=models, figures=[explorer, traversal])


@pytest.mark.slow
def test_the_page_draws_what_pytorch_decodes(harness, browser):
    page = browser.new_page(viewport={"width": 1000, "height": 1400})
    problems = live_checks.console_recorder(page)
    page.goto(harness.page.as_uri(), wait_until="load")
    live_checks.wait_until_live(page, count=2)
    live_checks.check_explorer(page, {n: m for n, m in harness.models.items() if n != "vae-mnist"})
    live_checks.check_traversal(page, harness.models["vae-mnist"])
    page.close()
    assert problems == []


@pytest.mark.slow
def test_without_javascript_and_in_print_the_fallback_picture_shows(harness, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(harness.page.as_uri(), wait_until="load")
    live_checks.fallback_only(page)
    context.close()
    page = browser.new_page()
    page.goto(harness.page.as_uri(), wait_until="load")
    live_checks.wait_until_live(page)
    assert not page.locator("img.live-fallback").first.is_visible()  # the widget replaces it
    page.emulate_media(media="print")
    live_checks.fallback_only(page)
    page.close()


@pytest.mark.slow
def test_the_widgets_are_light_enough(harness):
    weight = live_checks.page_weight(harness.page, harness.page.parent / "_static")
    assert weight["total"] <= 1.5e6, weight


def test_the_build_extension_points_the_exports_without_importing_torch(tmp_path):
    """book/_ext/live_figures.py runs in every build, also one with nothing
    to execute: it sets the exports' folder without importing torch (the
    nothing-changed rebuild took 5.5 s against be333b1's 2.6 s while it
    imported autoencoders.export for the variable's name)."""
    script = (
        "import os, sys, types\n"
        f"sys.path.insert(0, {str(REPO / 'book' / '_ext')!r})\n"
        "import live_figures\n"
        f"app = types.SimpleNamespace(builder=types.SimpleNamespace(format='html'), outdir={str(tmp_path)!r})\n"
        "live_figures._point_exports_here(app)\n"
        "print(os.environ['AUTOENCODERS_LIVE_FIGURES'], 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    folder, torch_imported = out.stdout.split()
    assert Path(folder) == tmp_path / "_static" / "live" and Path(folder).is_dir()
    assert torch_imported == "False"
    assert export.ASSETS_ENV == "AUTOENCODERS_LIVE_FIGURES"
