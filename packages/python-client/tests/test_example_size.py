"""The plain-loop example's claim — "10 lines of reporting code" — measured on its code (its syntax
tree), not on its comments. Reporting code is every statement that imports or uses the client or a
value made from it, and the bookkeeping kept only to be reported (a counter, a dict or list display
whose every use is in such a statement); each counts with all its physical lines (a compound
statement with its header). A computation such as an evaluation metric is training code even when
only reported."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plain_loop.py"
PACKAGE = "training_callbacks"


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _stores(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _header(stmt: ast.stmt) -> list[ast.AST]:
    """The parts of a statement that are not nested statements (a with's items, a for's target and
    iterable, ...): what its header line says."""
    return [
        child
        for name, child in ast.iter_fields(stmt)
        if name not in ("body", "orelse", "finalbody", "handlers")
        for child in (child if isinstance(child, list) else [child])
        if isinstance(child, ast.AST)
    ]


def _lines(stmt: ast.stmt) -> range:
    body = getattr(stmt, "body", None)
    end = body[0].lineno - 1 if isinstance(body, list) and body else stmt.end_lineno
    return range(stmt.lineno, (end or stmt.lineno) + 1)


def _is_bookkeeping(stmt: ast.stmt) -> bool:
    """`n = 0`, `n += 1`, `metrics = {...}`: a value kept, not computed."""
    if isinstance(stmt, ast.AugAssign):
        return True
    displays = (ast.Constant, ast.Dict, ast.List, ast.Tuple, ast.Set)
    return isinstance(stmt, ast.Assign) and isinstance(stmt.value, displays)


def reporting_lines(source: str) -> set[int]:
    tree = ast.parse(source)
    statements = [s for s in ast.walk(tree) if isinstance(s, ast.stmt) and not isinstance(s, ast.FunctionDef)]
    client: set[str] = set()
    for stmt in statements:  # what the package gives
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and PACKAGE in ast.unparse(stmt):
            client |= {a.asname or a.name for a in stmt.names}
    changed = True
    while changed:  # values made from the client
        changed = False
        for stmt in statements:
            if isinstance(stmt, ast.Assign) and _loads(stmt.value) & client and not _stores(stmt) <= client:
                client |= _stores(stmt)
                changed = True
    touching = [s for s in statements if any(_loads(h) & client for h in _header(s))]
    used_in = {name: [s for s in statements if name in set().union(*map(_loads, _header(s)))] for name in _stores(tree)}
    only_reported = {  # values made only to be passed to the client
        name for name, users in used_in.items() if users and all(u in touching for u in users) and name not in client
    }
    lines: set[int] = set()
    for stmt in statements:
        makes_reported = _is_bookkeeping(stmt) and _stores(stmt) <= only_reported
        imports_client = isinstance(stmt, (ast.Import, ast.ImportFrom)) and PACKAGE in ast.unparse(stmt)
        if stmt in touching or makes_reported or imports_client:
            lines |= set(_lines(stmt))
    return lines


def test_the_plain_loop_has_ten_lines_of_reporting_code() -> None:
    source = EXAMPLE.read_text()
    lines = reporting_lines(source)
    text = source.splitlines()
    assert len(lines) == 10, "\n".join(text[n - 1] for n in sorted(lines))
    # The "# report" comments a reader goes by mark exactly the lines measured.
    comments = tokenize.generate_tokens(io.StringIO(source).readline)
    marked = {t.start[0] for t in comments if t.type == tokenize.COMMENT and t.string.startswith("# report")}
    assert marked == lines


def test_the_measure_counts_code_not_comments() -> None:
    example = """
from training_callbacks import TrainingCallbacks
import torch

def main():
    cb = TrainingCallbacks("j", "detect",
                           framework="x")
    with cb:
        for epoch in range(3):
            loss = torch.rand(1).item()
            top1 = loss * 100
            metrics = {"loss": loss, "top1": top1,
                       "lr": 0.1}
            cb.on_epoch_end(epoch, metrics)  # a comment is no code
            print(loss)
"""
    text = example.splitlines()
    assert sorted(text[n - 1].strip() for n in reporting_lines(example)) == sorted(
        [
            "from training_callbacks import TrainingCallbacks",
            'cb = TrainingCallbacks("j", "detect",',
            'framework="x")',
            "with cb:",
            'metrics = {"loss": loss, "top1": top1,',
            '"lr": 0.1}',
            "cb.on_epoch_end(epoch, metrics)  # a comment is no code",
        ]
    )
