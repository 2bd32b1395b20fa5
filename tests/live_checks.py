"""Checks of a page's live figures in headless Chromium, shared by the
harness test (tests/test_live_figures.py) and the built-book test
(tests/test_book.py): drive a widget as a reader would, then compare what
the page drew with PyTorch's decoder at the code the page decoded."""
from __future__ import annotations

import numpy as np
import torch

TOLERANCE = 1e-3   # grey levels in [0, 1]: the page's decoder against PyTorch's
SLOW_MS = 30.0     # the longest a decode (and drawing it) may take, per pointer move

READY = """() => [...document.querySelectorAll('.live-figure')].map(f => f.dataset.ready || '')"""

NEXT_FRAME = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"

STATE = """panel => {
  const canvas = panel.querySelector('canvas.live-image');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return {z: JSON.parse(panel.dataset.z), image: Array.from(panel.liveImage),
          red: Array.from(pixels.filter((_, i) => i % 4 === 0)),
          timings: panel.liveTimings.slice()};
}"""


def wait_until_live(page, count: int | None = None) -> None:
    """Wait until every live figure of ``page`` has built its widget."""
    page.wait_for_function("() => [...document.querySelectorAll('.live-figure')]"
                           ".every(f => f.dataset.ready)", timeout=20_000)
    states = page.evaluate(READY)
    assert states and all(s == "true" for s in states), f"live figures: {states}"
    if count is not None:
        assert len(states) == count


# what the book's theme logs on every page, live figure or not (sphinx-thebe's
# settings script included twice; pydata-sphinx-theme without a default mode)
THEME_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode")


def not_the_themes(messages: list[str]) -> list[str]:
    """``messages`` without the theme's own (:data:`THEME_NOISE`)."""
    return [m for m in messages if not any(noise in m for noise in THEME_NOISE)]


def console_recorder(page) -> list[str]:
    """Collect the page's console errors and warnings and uncaught exceptions."""
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: messages.append(f"uncaught: {e}"))
    return messages


def state(panel) -> dict:
    """What a live panel shows: its code ``z``, the decoder output it
    computed (``image``, floats), the canvas's pixels (``red`` channel,
    0-255) and its decode times in ms."""
    return panel.evaluate(STATE)


def pytorch_image(model: torch.nn.Module, z) -> np.ndarray:
    """``model.decode`` at the code ``z``, flattened, as float64."""
    with torch.inference_mode():
        out = model.eval().decode(torch.tensor([z], dtype=torch.float32))
    return out[0].double().numpy().ravel()


def mismatch(shown: dict, model: torch.nn.Module) -> dict:
    """How far the page is from PyTorch at the page's code: ``computed``, the
    largest difference of its decoder's output; ``drawn``, of its canvas
    (8-bit grey levels, so up to half a level from the output it drew
    plus ``computed``); ``rounding``, the canvas against its own output."""
    truth = pytorch_image(model, shown["z"])
    computed = np.asarray(shown["image"])
    assert computed.shape == truth.shape, f"the page decoded {computed.shape} values, not {truth.shape}"
    drawn = np.asarray(shown["red"]) / 255
    return {"computed": float(np.abs(computed - truth).max()),
            "drawn": float(np.abs(drawn - truth).max()),
            "rounding": float(np.abs(drawn - np.clip(computed, 0, 1)).max())}


def assert_matches(shown: dict, model: torch.nn.Module, where: str) -> None:
    gaps = mismatch(shown, model)
    assert gaps["computed"] <= TOLERANCE, f"{where}: {gaps} at z = {shown['z']}"
    assert gaps["rounding"] <= 0.5 / 255 + 1e-9, f"{where}: canvas is not the output: {gaps}"
    assert gaps["drawn"] <= TOLERANCE + 0.5 / 255, f"{where}: {gaps}"


def point_at(page, panel, fx: float, fy: float) -> dict:
    """Move the mouse to the fraction (fx, fy) of the panel's scatter (from
    its top left) and return the panel's state."""
    scatter = panel.locator("canvas.live-scatter")
    scatter.evaluate("c => c.scrollIntoView({block: 'center'})")  # the mouse reaches the viewport only
    box = scatter.bounding_box()
    page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.evaluate(NEXT_FRAME)
    return state(panel)


def check_explorer(page, models: dict[str, torch.nn.Module],
                   points=((0.5, 0.5), (0.2, 0.3), (0.8, 0.75), (0.05, 0.95), (0.97, 0.02))) -> None:
    """Pointer, arrow keys and pixels of every explorer panel of ``page``
    (``models``: experiment name -> model)."""
    panels = page.locator('.live-figure[data-live="explorer"] .live-panel')
    assert panels.count() == len(models) > 0
    for i in range(panels.count()):
        panel = panels.nth(i)
        name = panel.get_attribute("data-model")
        seen = []
        for fx, fy in points:
            shown = point_at(page, panel, fx, fy)
            assert_matches(shown, models[name], f"{name} at {(fx, fy)}")
            seen.append(shown)
        # the pointer's place sets the code: right is larger z1, up is larger z2
        (a, b) = seen[1]["z"], seen[2]["z"]
        assert b[0] > a[0] and b[1] < a[1], (a, b)
        assert np.abs(np.subtract(seen[1]["image"], seen[2]["image"])).max() > 1e-3, \
            f"{name}: two points decode to the same image"
        # arrow keys move the point, by 1/50 of the window per press
        panel.locator("canvas.live-scatter").focus()
        before = state(panel)
        for key in ("ArrowRight", "ArrowRight", "ArrowDown"):
            page.keyboard.press(key)
        after = state(panel)
        assert after["z"][0] > before["z"][0] and after["z"][1] < before["z"][1], (before["z"], after["z"])
        assert_matches(after, models[name], f"{name} after arrow keys")
        assert np.median(after["timings"]) <= SLOW_MS, f"{name}: decodes take {after['timings']} ms"


def check_traversal(page, model: torch.nn.Module) -> None:
    """Digit choice, sliders and pixels of the traversal figure of ``page``."""
    panel = page.locator('.live-figure[data-live="traversal"] .live-panel')
    assert panel.count() == 1
    first = state(panel)
    assert_matches(first, model, "traversal, first digit")
    panel.locator(".live-digits input").nth(3).check()
    third = state(panel)
    assert third["z"] != first["z"]
    assert_matches(third, model, "traversal, digit 3")
    slider = panel.locator('input[type="range"]').first
    unit = int(slider.get_attribute("data-unit"))
    slider.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    moved = state(panel)
    assert moved["z"][unit] > third["z"][unit]
    assert [v for u, v in enumerate(moved["z"]) if u != unit] == \
        [v for u, v in enumerate(third["z"]) if u != unit]
    assert np.abs(np.subtract(moved["image"], third["image"])).max() > 1e-3
    assert_matches(moved, model, f"traversal, unit {unit} moved")
    slider.fill("-3")  # the end of the range
    end = state(panel)
    assert end["z"][unit] == -3.0
    assert_matches(end, model, f"traversal, unit {unit} at -3")
    panel.locator(".live-reset").click()
    assert state(panel)["z"] == third["z"]
    assert np.median(end["timings"]) <= SLOW_MS


def fallback_only(page) -> None:
    """Without the widget (no JavaScript, or print): each live figure shows
    its fallback picture, loaded, with alt text, and no widget."""
    figures = page.locator(".live-figure")
    assert figures.count() > 0
    for i in range(figures.count()):
        figure = figures.nth(i)
        img = figure.locator("img.live-fallback")
        assert img.is_visible() and img.get_attribute("alt").strip()
        assert img.evaluate("i => i.complete && i.naturalWidth > 0")
        assert not figure.locator(".live-widget").is_visible()


def page_weight(html_path, static) -> dict[str, int]:
    """Bytes a page's live figures add: their markup in the page (with the
    inline fallback pictures), the data files they load, and the script and
    style sheet in ``static`` (the site's _static folder)."""
    from bs4 import BeautifulSoup

    figures = BeautifulSoup(html_path.read_text(), "html.parser").select(".live-figure")
    models = [p["data-model"] for f in figures for p in f.select(".live-panel")]
    weight = {"markup": sum(len(str(f).encode()) for f in figures),
              "data": sum((static / "live" / f"{m}.js").stat().st_size for m in models),
              "script_and_style": sum((static / n).stat().st_size
                                      for n in ("live_figures.js", "book.css"))}
    return {**weight, "total": sum(weight.values())}
