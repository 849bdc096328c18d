"""Make the decorated functions of a scratch copy mutable: ``python tests/mutation_prepare.py DIR``.

mutmut 3 skips every function whose decorators are not a single ``@staticmethod``/``@classmethod``, which would
leave out ``@torch.no_grad()`` inference paths (DEC ``refresh_target``, ``forward_rows``, ``embed_data``) and the
``@once_differentiable`` custom backwards (``SparseLstsqFunction.backward``, the constant sparse matmul's). In the
copy under ``DIR`` (``make mutate`` clones HEAD there, never the live tree) each such decorator becomes a
``with torch.no_grad():`` around the body: the same first-order behaviour, and a body mutmut mutates.
"""

from __future__ import annotations

import sys
from pathlib import Path

import libcst as cst

UNWRAPPED = ("torch.no_grad()", "once_differentiable")
PACKAGES = ("nn", "clusters", "models", "linalg", "utils")


class _Unwrap(cst.CSTTransformer):
    def leave_FunctionDef(self, original: cst.FunctionDef, node: cst.FunctionDef) -> cst.FunctionDef:
        kept = [d for d in node.decorators if cst.Module([]).code_for_node(d.decorator) not in UNWRAPPED]
        if len(kept) == len(node.decorators):
            return node
        statements = list(node.body.body)
        docstring = []
        first = statements[0] if statements else None
        if isinstance(first, cst.SimpleStatementLine) and isinstance(first.body[0], cst.Expr) \
                and isinstance(first.body[0].value, (cst.SimpleString, cst.ConcatenatedString)):
            docstring, statements = [first], statements[1:]
        block = cst.With(items=[cst.WithItem(cst.parse_expression("torch.no_grad()"))],
                         body=cst.IndentedBlock(body=statements))
        return node.with_changes(decorators=kept, body=node.body.with_changes(body=docstring + [block]))


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else ".")
    for package in PACKAGES:
        for path in sorted((root / "pyg_em" / package).glob("*.py")):
            source = path.read_text()
            rewritten = cst.parse_module(source).visit(_Unwrap()).code
            if rewritten != source:
                path.write_text(rewritten)
                print(f"unwrapped decorators in {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
