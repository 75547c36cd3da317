"""Imports point downward only: checked by reading zklock's sources with ``ast``.

``caller / cli / testing -> lock -> _recipe -> (_session, lease, retry, _kinds, ...) -> errors``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import zklock

PACKAGE = Path(zklock.__file__).parent

# The layer of each top-level module: a module may import only from strictly lower layers.
LAYERS = {
    "errors": 0,
    "_deadline": 0,
    "_names": 0,
    "_attempts": 0,
    "contender": 0,
    "_wakeup": 0,
    "_contact": 0,  # pure bookkeeping of answer times
    "_parent_death": 0,  # a C call for child processes (the CLI's and the testing harness's)
    "_fork": 1,
    "_one_of_a_kind": 1,  # refuses copies with a UsageError
    "handler": 1,  # a kazoo connection handler: needs only kazoo's error classes, from errors
    "acl": 1,
    "_validate": 2,  # checks a NodeNaming and a RetryPolicy (naming, retry: layer 1)
    "_kinds": 1,
    "naming": 1,  # spells the markers _names parses
    "retry": 1,
    "lease": 2,
    "_session": 3,
    "_gate": 3,  # the threads of one process sharing a lock object
    "_recipe": 4,
    "lock": 5,
    "__init__": 6,
    "cli": 7,
    "testing": 7,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, absolute, including ``from a import b`` as ``a.b``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            for alias in node.names:
                yield f"{module}.{alias.name}"


def imports(path: Path, target: str) -> bool:
    return any(m == target or m.startswith(target + ".") for m in imported_modules(path))


def top_level_modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "zklock":
        return None
    if len(parts) == 1:
        return LAYERS["__init__"]
    return LAYERS.get(parts[1])


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


# ---------------------------------------------------------------- the import walker itself
def test_walker_resolves_relative_and_from_imports():
    found = set(imported_modules(PACKAGE / "_recipe.py"))
    assert "zklock._session" in found
    assert "zklock.errors.translate_kazoo_errors" in found
    assert "kazoo.client" in found
    assert imports(PACKAGE / "errors.py", "kazoo.exceptions")  # `from kazoo import exceptions`


# ---------------------------------------------------------------- the rules
def test_every_top_level_module_has_a_layer():
    names = {path.stem for path in top_level_modules()}
    names |= {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    names |= {path.name for path in PACKAGE.iterdir() if path.is_dir() and any(path.glob("*.py"))}
    assert names <= set(LAYERS), f"place {sorted(names - set(LAYERS))} in LAYERS"


@pytest.mark.parametrize("path", top_level_modules(), ids=rel)
def test_imports_point_downward(path):
    own = LAYERS[path.stem]
    for module in imported_modules(path):
        layer = layer_of(module)
        if layer is None:
            continue
        assert layer < own, f"{rel(path)} (layer {own}) imports {module} (layer {layer})"


@pytest.mark.parametrize("forbidden", ["zklock.lock", "zklock.cli", "zklock.testing"])
def test_recipe_never_imports_the_layers_above(forbidden):
    assert not imports(PACKAGE / "_recipe.py", forbidden)


def test_errors_imports_nothing_from_zklock():
    found = [m for m in imported_modules(PACKAGE / "errors.py") if m == "zklock" or m.startswith("zklock.")]
    assert found == []


def test_testing_never_imports_cli():
    for path in sorted((PACKAGE / "testing").rglob("*.py")):
        assert not imports(path, "zklock.cli"), f"{rel(path)} imports zklock.cli"


def test_core_never_imports_cli_or_testing():
    for path in top_level_modules():
        for target in ("zklock.cli", "zklock.testing"):
            assert not imports(path, target), f"{rel(path)} imports {target}"


@pytest.mark.parametrize(
    "path", [path for path in top_level_modules() if path.name != "errors.py"], ids=rel
)
def test_only_errors_imports_kazoo_exceptions(path):
    assert not imports(path, "kazoo.exceptions"), f"{rel(path)} imports kazoo.exceptions"


def test_only_the_plugins_body_imports_pytest():
    importers = sorted(
        rel(path) for path in all_modules() if imports(path, "pytest") or imports(path, "_pytest")
    )
    assert importers in ([], ["zklock/testing/_plugin.py"])
