"""Every object a chapter shows with ``literalinclude`` + ``:pyobject:``
names that chapter in its docstring ("Shown in ... (book/<file>.md)"), the
way d2l stamps its package: a reader of the code finds the prose, and a
moved or renamed object fails here instead of vanishing from a page."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"```\{literalinclude\} ([^\n]+)\n(.*?)```", re.S)


def _shown():
    for chapter in sorted((REPO / "book").glob("*.md")):
        for match in INCLUDE.finditer(chapter.read_text()):
            obj = re.search(r":pyobject: (\S+)", match.group(2))
            if obj:
                yield chapter.name, (chapter.parent / match.group(1).strip()).resolve(), obj.group(1)


def _docstring(path: Path, dotted: str) -> str | None:
    body = ast.parse(path.read_text()).body
    node = None
    for part in dotted.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return ast.get_docstring(node)


SHOWN = list(_shown())


def test_the_chapters_show_package_code():
    assert len(SHOWN) >= 20


@pytest.mark.parametrize("chapter, path, name", SHOWN,
                         ids=[f"{c}:{n}" for c, _, n in SHOWN])
def test_every_shown_object_names_its_chapter(chapter, path, name):
    assert path.is_file(), f"{chapter} includes {path}, which does not exist"
    doc = _docstring(path, name)
    assert doc is not None, f"{chapter} shows {name} from {path.name}, which has no docstring"
    assert f"book/{chapter}" in " ".join(doc.split()), \
        f"{name} ({path.name}) is shown in {chapter} but its docstring does not say so"
