"""The package layering the README promises, checked on the source: the integer contract
(golden/) imports nothing from training, RTL, simulation or synthesis and no autograd; rtl/
needs no training code; no module imports another's private names; no module-level import
after code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("golden", "search", "rtl", "sim", "synth", "spikehq", "nirio")
# package → sibling packages it must not import
FORBIDDEN = {"golden": {"search", "rtl", "sim", "synth"}, "rtl": {"search", "sim", "synth"},
             "search": {"rtl", "sim", "synth"}, "nirio": {"search", "rtl", "sim", "synth"}}


def sources():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            yield pkg, path, ast.parse(path.read_text(), filename=str(path))


def imported_modules(pkg: str, tree: ast.Module):
    """(sibling package or external module, imported names) of every import statement."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 2:
                yield module.split(".")[0], node.module, [a.name for a in node.names]
            elif node.level == 1:
                yield pkg, module, [a.name for a in node.names]
            else:
                yield module, module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, alias.name, []


@pytest.mark.parametrize("pkg,path,tree", list(sources()), ids=lambda v: v.name if isinstance(v, Path) else None)
def test_layering(pkg, path, tree):
    for target, module, names in imported_modules(pkg, tree):
        assert target not in FORBIDDEN.get(pkg, ()), f"{path.name}: {pkg}/ must not import {target}/ ({module})"
        if pkg == "golden":
            assert not (module or "").startswith(("torch.nn", "torch.autograd")), f"{path.name} imports {module}"
            assert not any(n in ("nn", "autograd") for n in names if module == "torch"), path.name
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{path.name}: imports private names {private} from {module}"


@pytest.mark.parametrize("pkg,path,tree", list(sources()), ids=lambda v: v.name if isinstance(v, Path) else None)
def test_no_module_level_import_after_code(pkg, path, tree):
    seen_code = False
    for node in tree.body:
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if is_import:
            assert not seen_code, f"{path.name}:{node.lineno}: import after code"
        elif not is_docstring and not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)):
            seen_code = True


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")),
                         ids=lambda p: p.name)
def test_tests_and_benchmarks_import_no_private_names(path):
    for _, module, names in imported_modules("", ast.parse(path.read_text())):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{path.name}: imports private names {private} from {module}"


def test_golden_has_no_training_code():
    """No name of PyTorch's training machinery appears in golden/'s code (docstrings aside)."""
    for path in (ROOT / "golden").glob("*.py"):
        names = {node.attr if isinstance(node, ast.Attribute) else node.id
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, (ast.Attribute, ast.Name))}
        assert not names & {"nn", "autograd", "backward", "requires_grad", "optim", "grad", "no_grad"}, path.name
