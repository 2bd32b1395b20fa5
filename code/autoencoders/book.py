"""What every chapter shares: glue a number, a table or a formula into the
prose, and state a build-time **claim**.

Chapters import these the same way everywhere::

    from autoencoders.book import claim, glue, glue_figure, glue_numbers

Sentences live in the chapter's Markdown; numbers reach them through
``{glue:text}`` roles. A sentence that compares or judges ("sharper",
"collapses") stands next to a claim (:mod:`autoencoders.claims`, re-exported
here) whose condition is this build's measurement: in the ``quick`` and
``full`` profiles a false claim fails the build with the sentence and the
numbers; in ``smoke``, whose numbers mean nothing by design, it only warns.
"""
from __future__ import annotations

from .claims import Claim, ClaimError, ClaimWarning, _plain, check_claims, claim, strict_claims

__all__ = ["Claim", "ClaimError", "ClaimWarning", "check_claims", "claim", "compared",
           "full_profile_note", "glue", "glue_figure", "glue_math", "glue_numbers", "glue_table",
           "strict_claims", "units"]


def glue(name: str, value, *, display: bool = False):
    """Glue ``value`` (a number, a string, a figure) under ``name`` for the
    prose, as ``{glue:text}`\u200bname:.3f\u200b``` etc. Returns the value."""
    from myst_nb import glue as nb_glue

    value = _plain(value)
    nb_glue(name, value, display=display)
    return value


def glue_numbers(prefix: str, numbers) -> None:
    """Glue every ``name: value`` of the mapping ``numbers`` (e.g. a result's
    ``numbers()``) as ``{prefix}_{name}``."""
    for name, value in numbers.items():
        glue(f"{prefix}_{name}", value)


def glue_figure(name: str, fig) -> None:
    """Glue a matplotlib figure for ``{glue:figure}`` and close it, so the
    notebook does not show it a second time where it was made."""
    import matplotlib.pyplot as plt

    glue(name, fig)
    plt.close(fig)


def glue_math(name: str, expr, **latex_options) -> str:
    """Glue a sympy expression (or a LaTeX string) for ``{glue:math}``;
    returns the LaTeX."""
    from IPython.display import Math
    from myst_nb import glue as nb_glue

    if isinstance(expr, str):
        tex = expr
    else:
        import sympy as sp

        tex = sp.latex(expr, **latex_options)
    nb_glue(name, Math(tex), display=False)
    return tex


def glue_table(name: str, table, *, display: bool = False):
    """Glue a table (a pandas DataFrame or Styler) for ``{glue:figure}``."""
    from myst_nb import glue as nb_glue

    nb_glue(name, table, display=display)
    return table


def compared(a: float, b: float, *, within: float = 0.02,
             words: tuple[str, str, str] = ("lower than", "about the same as", "higher than")) -> str:
    """How ``a`` compares with ``b``, in words: ``words[1]`` when they differ
    by at most ``within`` of ``|b|``, else ``words[0]`` (``a`` below ``b``) or
    ``words[2]``. For a comparison whose direction differs between profiles:
    the chapter glues the words instead of stating a direction."""
    if not within >= 0:
        raise ValueError(f"within must be a non-negative fraction, got {within!r}")
    a, b = float(_plain(a)), float(_plain(b))
    if abs(a - b) <= within * abs(b):
        return words[1]
    return words[0] if a < b else words[2]


def units(count: float, noun: str) -> str:
    """``count`` and ``noun``, the noun in the plural unless the count is 1
    ("1 active unit", "0 active units", "3 codes"): for a glued count that a
    build may make 1."""
    count = _plain(count)
    count = int(count) if float(count).is_integer() else count
    return f"{count} {noun}" + ("" if count == 1 else "s")


def full_profile_note(full_does: str, *, profile: str | None = None) -> str:
    """A chapter's sentence on the ``full`` profile's budget: "The full profile
    <full_does>." in a smaller profile; in ``full`` itself, that this build
    already has it (a sentence about what ``full`` trains more would be false
    there). Glue it as text: no Markdown inside."""
    from .config import check_profile, current_profile

    if check_profile(profile or current_profile()) == "full":
        return "This build used the full profile, the book's largest budget."
    return f"The full profile {full_does}."
