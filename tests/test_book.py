"""The whole book, built as a reader gets it, and looked at in a browser.

The build uses the ``smoke`` profile and a fresh artifact cache, so it runs
every chapter's real training path in minutes. Any Sphinx warning or cell
error fails it. The browser checks open every page in headless Chromium.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _build(out: Path, cache: Path) -> str:
    """Build the book in ``smoke`` into ``out`` with the model cache ``cache``; its log."""
    env = dict(os.environ, AUTOENCODERS_PROFILE="smoke",
               AUTOENCODERS_CACHE=str(cache), AUTOENCODERS_PROGRESS="0")
    tick = time.perf_counter()
    result = subprocess.run(
        [shutil.which("jupyter-book") or "jupyter-book", "build", str(REPO), "-W", "--keep-going",
         "--path-output", str(out)],
        env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - tick
    log = result.stdout + result.stderr
    (out / "build.log").write_text(log)
    print(f"smoke build: {seconds:.0f} s, log at {out / 'build.log'}")
    assert result.returncode == 0, f"book build failed:\n{log[-6000:]}"
    assert "build succeeded" in log
    return log


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    _build(out, out / "cache")
    return out / "_build" / "html"


def _pages(html: Path) -> list[Path]:
    skip = {"genindex.html", "search.html"}
    return sorted(p for p in html.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts
                  and "_mathjax" not in p.parts and "_sources" not in p.parts)


def test_the_book_builds_without_warnings(built_book):
    log = (built_book.parents[1] / "build.log").read_text()
    warnings = [line for line in log.splitlines() if re.search(r"(WARNING|ERROR|CRITICAL):", line)]
    assert warnings == []
    assert (built_book / "book" / "intro.html").is_file()


# the one number each build measures afresh: how long exporting a live figure took
EXPORT_SECONDS = re.compile(r"took\s+[\d.,]+\s+s\s+of\s+the\s+build")


def _page_texts(html: Path) -> dict[str, str]:
    """The visible text of every page's article (what a reader reads), but
    for the live figures' export times."""
    from bs4 import BeautifulSoup

    texts = {}
    for page in _pages(html):
        article = BeautifulSoup(page.read_text(), "html.parser").find("article")
        text = article.get_text(" ", strip=True) if article else ""
        texts[str(page.relative_to(html))] = EXPORT_SECONDS.sub("took … s of the build", text)
    return texts


def test_a_rebuild_with_every_model_cached_runs_the_chapters_side_by_side(built_book,
                                                                          tmp_path):
    # the first build trained every model; a build into a new folder trains
    # nothing, so its chapters run side by side (book/_ext/side_by_side.py),
    # and a reader sees the same pages, every glued number the same
    log = _build(tmp_path, built_book.parents[1] / "cache")
    assert re.search(r"executing \d+ pages side by side", log)
    assert "failed side by side" not in log
    assert _page_texts(tmp_path / "_build" / "html") == _page_texts(built_book)


def test_every_internal_link_resolves(built_book):
    from bs4 import BeautifulSoup

    ids: dict[Path, set[str]] = {}

    def anchors(page: Path) -> set[str]:
        if page not in ids:
            soup = BeautifulSoup(page.read_text(), "html.parser")
            ids[page] = {t["id"] for t in soup.find_all(id=True)} | \
                        {t["name"] for t in soup.find_all("a", attrs={"name": True})}
        return ids[page]

    broken = []
    for page in _pages(built_book):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for tag in soup.find_all(["a", "link", "script", "img"]):
            ref = tag.get("href") or tag.get("src")
            if not ref or urlparse(ref).scheme or ref.startswith(("mailto:", "javascript:", "//")):
                continue
            url = urlparse(ref)
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built_book)}: {ref} (no file)")
            elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in anchors(target):
                broken.append(f"{page.relative_to(built_book)}: {ref} (no anchor)")
    assert broken == []


def test_every_citable_anchor_exists(built_book):
    """The stable links listed on the how-to-cite page land on their results."""
    from bs4 import BeautifulSoup

    page = built_book / "book" / "how_to_cite.html"
    soup = BeautifulSoup(page.read_text(), "html.parser")
    links = [c.get_text() for c in soup.find_all("code")
             if re.fullmatch(r"book/\w+\.html#[\w-]+", c.get_text())]
    assert len(links) >= 10
    missing = []
    for link in links:
        path, anchor = link.split("#")
        target = built_book / path
        ids = {t["id"] for t in BeautifulSoup(target.read_text(), "html.parser").find_all(id=True)} \
            if target.is_file() else set()
        if anchor not in ids:
            missing.append(link)
    assert missing == []


WAIT_FOR_MATHJAX = """async () => {
  if (!document.querySelector('.math')) return 'no math';
  for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(window.MathJax && MathJax.startup)) return 'MathJax did not load';
  await MathJax.startup.promise;
  return 'ok';
}"""

MATH_REPORT = """() => {
  const math = [...document.querySelectorAll('.math')];
  const unrendered = math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80));
  const errors = [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80));
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest('pre, code, script, style, .highlight')) continue;
    if (/\\\\\\[|\\\\\\(|\\$\\$/.test(n.textContent)) raw.push(n.textContent.slice(0, 80));
  }
  return {count: math.length, unrendered, errors, raw};
}"""

IMAGE_REPORT = """async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.complete ? null : i.decode().catch(() => null)));
  return imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src'));
}"""


def test_every_equation_renders_and_every_image_loads(built_book, browser):
    page = browser.new_page()
    failures, math_total = [], 0
    for path in _pages(built_book):
        if 'http-equiv="Refresh"' in path.read_text():  # index.html: a redirect
            continue
        name = str(path.relative_to(built_book))
        page.goto(path.as_uri(), wait_until="load")
        state = page.evaluate(WAIT_FOR_MATHJAX)
        if state not in ("ok", "no math"):
            failures.append(f"{name}: {state}")
            continue
        report = page.evaluate(MATH_REPORT)
        math_total += report["count"]
        for key in ("unrendered", "errors", "raw"):
            failures += [f"{name}: {key} math: {m!r}" for m in report[key]]
        failures += [f"{name}: image did not load: {src}" for src in page.evaluate(IMAGE_REPORT)]
    page.close()
    assert failures == []
    assert math_total > 0 or len(_pages(built_book)) <= 3  # math appears once chapters land


def test_mathjax_is_served_with_the_site(built_book):
    pages_with_math = [p for p in _pages(built_book) if 'class="math' in p.read_text()]
    for path in pages_with_math:
        scripts = re.findall(r'<script[^>]+src="([^"]*tex-chtml[^"]*)"', path.read_text())
        assert scripts and not any("://" in s for s in scripts), path
        assert (path.parent / scripts[0]).resolve().is_file()


def _notebook_pages(html: Path) -> list[str]:
    return sorted(p.stem for p in (html / "_sources" / "book").glob("*.ipynb"))


def test_every_chapter_offers_its_notebook_for_download(built_book):
    chapters = _notebook_pages(built_book)
    assert "vae_theory" in chapters
    for name in chapters:
        page = (built_book / "book" / f"{name}.html").read_text()
        for suffix in (".ipynb", ".md"):
            assert f'href="../_sources/book/{name}{suffix}"' in page, (name, suffix)


def test_a_downloaded_chapter_runs_standalone(built_book, tmp_path, monkeypatch):
    """The .ipynb from the download menu, run from a fresh kernel in an
    unrelated folder (as a student would after downloading it)."""
    import nbformat
    from nbclient import NotebookClient

    chapters = _notebook_pages(built_book)
    name = "autoencoders" if "autoencoders" in chapters else "vae_theory"
    notebook = nbformat.read(built_book / "_sources" / "book" / f"{name}.ipynb", as_version=4)
    assert sum(c.cell_type == "code" for c in notebook.cells) > 0
    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "cache"))
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []


def _first_figure_page(html: Path) -> Path:
    for name in ("autoencoders", "vae_mnist", "vae_theory"):
        page = html / "book" / f"{name}.html"
        if page.is_file() and "<img" in page.read_text():
            return page
    pytest.skip("no chapter with a figure yet")


def test_figures_have_opaque_backgrounds_and_alt_text(built_book):
    """A transparent figure vanishes on the dark theme; a figure without alt
    text is invisible to a screen reader."""
    import numpy as np
    from bs4 import BeautifulSoup
    from PIL import Image

    checked = 0
    for page in _pages(built_book):
        if "book" not in page.parts:
            continue
        for img in BeautifulSoup(page.read_text(), "html.parser").find_all("img"):
            src = img.get("src", "")
            if not src.endswith(".png") or "_static" in src:
                continue
            assert img.get("alt", "").strip(), f"{page.name}: {src} has no alt text"
            with Image.open((page.parent / src).resolve()) as im:
                if "A" in im.getbands():
                    alpha = np.asarray(im.getchannel("A"))
                    assert alpha.min() == 255, f"{page.name}: {src} is partly transparent"
            checked += 1
    assert checked > 0


def test_a_chapter_reads_in_light_and_dark_theme(built_book, browser, tmp_path):
    """Screenshot one chapter in both themes: the theme follows the reader's
    preference, and its first figure keeps its contrast on the dark page (the
    theme dims images a little; a transparent figure would lose its dark
    lines against the dark page)."""
    import numpy as np
    from PIL import Image

    page_path = _first_figure_page(built_book)
    backgrounds, figures = {}, {}
    for scheme in ("light", "dark"):
        page = browser.new_page(color_scheme=scheme, viewport={"width": 1280, "height": 1600})
        page.goto(page_path.as_uri(), wait_until="load")
        page.evaluate(WAIT_FOR_MATHJAX)
        assert page.evaluate("document.documentElement.dataset.theme") == scheme
        page.screenshot(path=str(tmp_path / f"{scheme}.png"))
        shot = np.asarray(Image.open(tmp_path / f"{scheme}.png").convert("L"), dtype=float)
        backgrounds[scheme] = np.median(shot)
        figure = page.locator("main img").first
        figure.scroll_into_view_if_needed()
        figure.screenshot(path=str(tmp_path / f"{scheme}-figure.png"))
        pixels = np.asarray(Image.open(tmp_path / f"{scheme}-figure.png").convert("L"), dtype=float)
        assert pixels.std() > 20, f"{scheme}: the figure looks blank"
        figures[scheme] = pixels
        page.close()
    assert backgrounds["dark"] < 100 < backgrounds["light"]
    assert figures["dark"].std() > 0.6 * figures["light"].std()


def test_the_derivations_chapter_prints_to_pdf(built_book, browser, tmp_path):
    """Print the VAE-theory chapter as a reader would (Chromium's print to
    PDF, with MathJax finished): a multi-page PDF with the theme's print
    layout (no sidebars) and the rendered equations as vector glyphs."""
    page = browser.new_page()
    page.goto((built_book / "book" / "vae_theory.html").as_uri(), wait_until="load")
    assert page.evaluate(WAIT_FOR_MATHJAX) == "ok"
    page.emulate_media(media="print")
    assert page.locator(".bd-sidebar-primary").first.is_hidden()
    pdf = tmp_path / "vae_theory.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    page.close()
    blob = pdf.read_bytes()
    assert blob.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", blob)) >= 5


def test_the_live_figures_run_in_the_built_pages(built_book, browser, monkeypatch):
    """The ablations and VAE pages opened from file://: each live figure
    loads the decoders this build exported and draws what the build's cached
    models decode at the pointer and the sliders (tests/live_checks.py), with
    no console error, in both themes, and adds at most 1.5 MB to its page."""
    import live_checks
    from autoencoders.cache import find_cached

    monkeypatch.setenv("AUTOENCODERS_PROFILE", "smoke")
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(built_book.parents[1] / "cache"))
    pages = {"ablations": ["abl-ae-z2-long", "abl-vae-z2-kl0.001-long"], "vae_mnist": ["vae-mnist"]}
    for name, models in pages.items():
        path = built_book / "book" / f"{name}.html"
        weight = live_checks.page_weight(path, built_book / "_static")
        assert weight["total"] <= 1.5e6, (name, weight)
        decoders = {m: find_cached(m).model for m in models}
        for scheme in ("light", "dark"):
            page = browser.new_page(color_scheme=scheme, viewport={"width": 1280, "height": 1600})
            problems = live_checks.console_recorder(page)
            page.goto(path.as_uri(), wait_until="load")
            live_checks.wait_until_live(page, count=1)
            if name == "ablations":
                live_checks.check_explorer(page, decoders)
                corner = page.locator("canvas.live-scatter").first.evaluate(
                    "c => Array.from(c.getContext('2d').getImageData(1, 1, 1, 1).data)")
                assert (sum(corner[:3]) / 3 < 100) == (scheme == "dark"), (scheme, corner)
            else:
                live_checks.check_traversal(page, decoders["vae-mnist"])
            page.close()
            assert live_checks.not_the_themes(problems) == [], (name, scheme)


RESULTS_STYLE = """() => {
  const output = document.querySelector('div.output.text_html:has(table.results-overview)');
  const glued = [...document.querySelectorAll('article p span.pasted-text')];
  return {background: getComputedStyle(output).backgroundColor,
          plain: glued.filter(s => !s.closest('strong, b')).map(s => getComputedStyle(s).fontWeight),
          bold: glued.filter(s => s.closest('strong, b')).map(s => getComputedStyle(s).fontWeight)};
}"""


def results_page_style(page) -> dict:
    """The results page's table frame colour and its glued text's weights."""
    return page.evaluate(RESULTS_STYLE)


def test_the_results_page_has_no_frame_in_dark_mode_and_no_bold_data(built_book, browser):
    """In dark mode the theme gives HTML cell outputs a light frame, which
    the results table does not need; and glued text is set in normal weight
    unless the Markdown around it asks for bold (book/_static/book.css)."""
    for scheme in ("light", "dark"):
        page = browser.new_page(color_scheme=scheme)
        page.goto((built_book / "book" / "results.html").as_uri(), wait_until="load")
        style = results_page_style(page)
        page.close()
        assert style["background"] == "rgba(0, 0, 0, 0)", (scheme, style)
        assert style["plain"] and set(style["plain"]) == {"400"}, (scheme, style)
        assert set(style["bold"]) <= {"700"}, (scheme, style)
