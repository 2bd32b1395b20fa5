"""book/_ext/side_by_side.py on a three-page book: pages run side by side,
the ``read_last`` page after the others, every build executes afresh, and a
failing page still fails the build with its traceback."""
from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

PAGE = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# {title}

```{{code-cell}} ipython3
import os, time
from pathlib import Path
{body}
print("pid", os.getpid())
```
"""


def _book(root: Path, side_by_side: bool, fail: bool = False) -> Path:
    (root / "_ext").mkdir(parents=True)
    shutil.copy(REPO / "book" / "_ext" / "side_by_side.py", root / "_ext")
    shutil.copy(REPO / "book" / "_ext" / "read_order.py", root / "_ext")
    (root / "_ext" / "answer.py").write_text(f"def answer():\n    return {side_by_side}\n")
    stamp = "Path('stamps').mkdir(exist_ok=True); Path('stamps', '{n}').write_text(str(time.time()))"
    pages = {"a": "time.sleep(4); " + stamp.format(n="a"),
             "b": "time.sleep(4); " + stamp.format(n="b") + ("; 1 / 0" if fail else ""),
             "all": "print('seen', sorted(p.name for p in Path('stamps').iterdir()))"}
    for name, body in pages.items():
        (root / f"{name}.md").write_text(PAGE.format(title=name, body=body))
    (root / "_toc.yml").write_text("format: jb-book\nroot: all\nchapters:\n- file: a\n- file: b\n")
    (root / "_config.yml").write_text(textwrap.dedent("""\
        title: t
        execute:
          execute_notebooks: cache
          timeout: 120
        sphinx:
          local_extensions:
            read_order: _ext
            side_by_side: _ext
          config:
            nb_execution_raise_on_error: true
            read_last: [all]
            execute_side_by_side_after: "answer:answer"
            execute_jobs: 3
        """))
    return root


def _build(root: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("jupyter-book") or "jupyter-book", "build", str(root),
                           "--path-output", str(out)],
                          capture_output=True, text=True, timeout=600)


def _output(out: Path, page: str) -> str:
    return (out / "_build" / "html" / f"{page}.html").read_text()


def _stamps(root: Path) -> dict[str, float]:
    return {p.name: float(p.read_text()) for p in (root / "stamps").iterdir()}


def test_pages_run_side_by_side_and_the_last_page_after_them(tmp_path):
    root = _book(tmp_path / "src", side_by_side=True)
    result = _build(root, tmp_path / "out")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "executing 3 pages side by side" in log
    assert "failed side by side" not in log  # else myst-nb ran it again, after the others
    assert "without encryption" not in log   # the kernels talk over IPC sockets, not TCP
    stamps = _stamps(root)
    assert abs(stamps["a"] - stamps["b"]) < 3  # ran together, not 4 s apart
    assert "seen ['a', 'b']" in _output(tmp_path / "out", "all")
    # a second build into the same folder executes again, never reusing the
    # outputs the first stored, even when myst-nb executes the pages itself
    shutil.rmtree(root / "stamps")
    (root / "_ext" / "answer.py").write_text("def answer():\n    return False\n")
    (root / "a.md").write_text((root / "a.md").read_text() + "\nedited\n")
    (root / "b.md").write_text((root / "b.md").read_text() + "\nedited\n")
    (root / "all.md").write_text((root / "all.md").read_text() + "\nedited\n")
    result = _build(root, tmp_path / "out")
    assert result.returncode == 0
    assert set(_stamps(root)) == {"a", "b"}


def test_one_after_the_other_when_the_predicate_says_no(tmp_path):
    root = _book(tmp_path / "src", side_by_side=False)
    result = _build(root, tmp_path / "out")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "pages side by side" not in log
    stamps = _stamps(root)
    assert abs(stamps["a"] - stamps["b"]) >= 4  # one after the other


def test_a_failing_page_still_fails_the_build_with_its_traceback(tmp_path):
    root = _book(tmp_path / "src", side_by_side=True, fail=True)
    result = _build(root, tmp_path / "out")
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ZeroDivisionError" in log
