"""LaTeX layout of the long sympy results that the VAE-theory chapter
prints (book/vae_theory.md): sums broken over lines inside ``aligned``."""
from __future__ import annotations

import sympy as sp


def split_sum(expr, per_line):
    """LaTeX of a sum, broken after every `per_line` terms (inside aligned)."""
    terms = [sp.latex(term) for term in sp.Add(expr).as_ordered_terms()]
    out = []
    for i, term in enumerate(terms):
        sign = " " if term.startswith("-") else " + "
        out.append(term if i == 0 else (r" \\ &\quad" if i % per_line == 0 else "") + sign + term)
    return "".join(out)

def by_coordinate(expr, per_line):
    """Like :func:`split_sum`, with the terms grouped by the coordinate they involve."""
    def coordinate(term):
        names = "".join(str(s) for s in term.free_symbols)
        return next((i for i in "123456789" if i in names), "~")
    groups = {}
    for term in sp.Add(expr).as_ordered_terms():
        groups.setdefault(coordinate(term), []).append(term)
    lines = [split_sum(sp.Add(*groups[k], evaluate=False), per_line) for k in sorted(groups)]
    return r" \\ &\quad + ".join(lines).replace(r"+  -", "-").replace("+ -", "- ")
