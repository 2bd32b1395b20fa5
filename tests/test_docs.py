"""The README stays short and, like the maintainers' pages under docs/,
points only at files that exist; the faults table names real tests."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
MAX_README_LINES = 250
# Made by a build or a run, not in a clone: a backticked path under these is
# not checked (the README tells the reader to open _build/html/index.html).
GENERATED = ("_build", "bench-results")
# Backticked file names (with no folder) that are checked: the repository's own kinds.
FILE_KINDS = ("md", "txt", "toml", "yml", "yaml", "py", "cff", "sh", "bib", "png", "json", "in")

_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1\s*$", re.S | re.M)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks (commands, not references)."""
    return _FENCE.sub("", text)


def links(text: str) -> list[str]:
    """Targets of the Markdown links and images that point into the repository."""
    return [t for t in _LINK.findall(_prose(text))
            if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


def backticked_paths(text: str) -> list[str]:
    """Backticked words that name a file or folder of the repository: with a
    slash, or a file name of one of ``FILE_KINDS``. Globs and placeholders
    (``*``, ``<chapter>``, ``{a,b}``), home and absolute paths, paths outside
    the clone (``../``), commands (spaces) and generated folders are left out."""
    found = []
    for word in _CODE.findall(_prose(text)):
        word = word.strip()
        if (" " in word or re.search(r"[*<>{}$=~]", word) or word.startswith(("/", "..", "-"))
                or "://" in word or word.split("/")[0] in GENERATED):
            continue
        if "/" in word or re.fullmatch(r"[\w.-]+\.(%s)" % "|".join(FILE_KINDS), word):
            found.append(word)
    return found


def missing(page: Path, readme: bool | None = None) -> list[str]:
    """What ``page`` links or names that does not exist. A link resolves from
    the page's folder; a backticked path from the repository's root or, for
    the package's rooms (``derivations/``), from ``code/autoencoders``. The
    pages under docs/ also name files of the cache and of a bench run
    (``metrics.json``, ``evals/``): there, only a path that starts with a
    folder of the repository's root (``tests/...``) counts as one."""
    text = page.read_text(encoding="utf-8")
    gone = [f"link {t}" for t in links(text)
            if not (page.parent / t.split("#")[0]).exists()]
    paths = backticked_paths(text)
    if not (page == README if readme is None else readme):
        paths = [p for p in paths if "/" in p.rstrip("/") and (REPO / p.split("/")[0]).is_dir()]
    gone += [f"`{p}`" for p in paths
             if not any((root / p).exists() for root in (REPO, REPO / "code" / "autoencoders"))]
    return gone


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines, more than {MAX_README_LINES}: move maintainers' detail "
        "to docs/contributing.md, docs/benchmarks.md or docs/reliability.md")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_file_a_page_points_at_exists(page):
    assert not missing(page), f"{page.relative_to(REPO)} points at files that do not exist: {missing(page)}"


def test_the_readme_links_the_maintainers_pages_and_its_screenshot():
    targets = set(links(README.read_text(encoding="utf-8")))
    assert {"docs/benchmarks.md", "docs/reliability.md", "docs/contributing.md",
            "docs/screenshot.png"} <= targets


def test_the_checks_find_what_is_missing(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("See [the guide](docs/nowhere.md), ![a](README.md), `tools/no-such.sh`,\n"
                    "`derivations/`, `CITATION.cff`, `missing.toml`, `_build/html/index.html`,\n"
                    "`python -m autoencoders`, `book/<chapter>.md`, [web](https://example.org).\n"
                    "```bash\ncat not/checked.txt\n```\n")
    assert missing(page, readme=True) == ["link docs/nowhere.md", "link README.md",
                                          "`tools/no-such.sh`", "`missing.toml`"]
    # under docs/, a bare file name may be the cache's or a run's (metrics.json)
    assert missing(page, readme=False) == ["link docs/nowhere.md", "link README.md",
                                           "`tools/no-such.sh`"]


# ------------------------------------------------- the faults table's tests
def _fault_rows() -> list[list[str]]:
    text = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    table = text[text.index("| # | fault tried"):].split("\n\n")[0].splitlines()[2:]
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in table]


def test_every_fault_row_names_tests_that_exist():
    """Each row's last cell names tests of tests/test_faults.py: whole names,
    or a prefix ending in ``_`` (``test_4_*``, ``test_12_…``) that some test
    starts with; a numbered row's tests start with its number, except the
    rows of cases tried on our own ("own, kind N"), which name the tests of
    the kind they belong to."""
    tree = ast.parse((REPO / "tests" / "test_faults.py").read_text(encoding="utf-8"))
    tests = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
    rows = _fault_rows()
    assert len(rows) >= 13
    for row in rows:
        named = re.findall(r"test_\w+", row[-1])
        assert named, f"fault row {row[0]} names no test: {row[-1]!r}"
        for name in named:
            if name.endswith("_"):
                assert any(t.startswith(name) for t in tests), f"row {row[0]}: no test starts {name}"
            else:
                assert name in tests, f"row {row[0]}: tests/test_faults.py has no {name}"
        if row[0].isdigit() and not row[1].startswith("own"):  # own cases: the kind's tests
            assert any(n.startswith(f"test_{row[0]}_") for n in named), row
