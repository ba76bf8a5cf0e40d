"""The package's architecture, enforced: domain code never reaches for Dagster, modules stay small.

The domain packages hold the platform's logic and must run (and be tested) without the
orchestrator; only `zdte_assets.orchestration` and `zdte_assets.apps` wire them into Dagster.
Two independent proofs, because each alone can be fooled: the import statements of every module
(a lazy import inside a function counts too), and the modules Python actually loads when every
domain module is imported in a fresh interpreter (an indirect import through a helper counts too).

Size: a domain module longer than ``MAX_LINES`` must say why in its module docstring, with a
sentence containing ``LONG_MODULE_MARKER`` ("Longer than 600 lines because ...").
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import zdte_assets
from zdte_assets_tests.check import DOMAIN

#: The same packages the quality gate holds to `mypy --strict`.
DOMAIN_PACKAGES = DOMAIN
MAX_LINES = 600
LONG_MODULE_MARKER = f"Longer than {MAX_LINES} lines because"
FORBIDDEN = "dagster"

PACKAGE_DIR = Path(zdte_assets.__file__).resolve().parent


def domain_modules() -> list[tuple[str, Path]]:
    """(dotted name, path) of every module of the domain packages, packages' __init__ included."""
    found = []
    for package in DOMAIN_PACKAGES:
        for path in sorted((PACKAGE_DIR / package).rglob("*.py")):
            parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append((".".join(parts), path))
    return found


MODULES = domain_modules()


def test_every_domain_package_is_found() -> None:
    names = {name for name, _ in MODULES}
    for package in DOMAIN_PACKAGES:
        assert f"zdte_assets.{package}" in names, f"{package} is not a package with modules"
    assert len(MODULES) > len(DOMAIN_PACKAGES)


def imported_names(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of everything `source` imports, anywhere in the module (relative imports
    resolved against `module`; `is_package` for a package's __init__, named as the package)."""
    names: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _is_forbidden(name: str) -> bool:
    top = name.split(".")[0]
    return top == FORBIDDEN or top.startswith(f"{FORBIDDEN}_")


def test_the_import_scanner_sees_every_form_of_import() -> None:
    """The scanner itself can fail: each of these forms must be reported."""
    forms = [
        "import dagster",
        "import dagster as dg",
        "from dagster import asset",
        "import dagster_aws.s3",
        "def f():\n    import dagster\n",
        "if TYPE_CHECKING:\n    from dagster import Definitions\n",
        "importlib.import_module('dagster')",
    ]
    for source in forms:
        assert any(_is_forbidden(n) for n in imported_names(source, "zdte_assets.core.x")), source
    assert not any(
        _is_forbidden(n)
        for n in imported_names("import polars\nfrom . import dagsterish", "zdte_assets.core.x")
    )
    # Relative imports resolve against the module's package (its own name for an __init__).
    assert "zdte_assets.orchestration.jobs" in imported_names(
        "from ..orchestration import jobs", "zdte_assets.core.x"
    )
    assert "zdte_assets.core.config" in imported_names(
        "from . import config", "zdte_assets.core", is_package=True
    )


@pytest.mark.parametrize("module,path", MODULES, ids=[name for name, _ in MODULES])
def test_no_domain_module_imports_dagster(module: str, path: Path) -> None:
    names = imported_names(
        path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
    )
    bad = sorted(n for n in names if _is_forbidden(n))
    assert not bad, f"{path.relative_to(PACKAGE_DIR.parent)} imports {', '.join(bad)}"
    # Nor anything of the wiring, which would bring Dagster in with it.
    wiring = sorted(
        n for n in names if n.startswith(("zdte_assets.orchestration", "zdte_assets.apps"))
    )
    assert not wiring, f"{path.relative_to(PACKAGE_DIR.parent)} imports {', '.join(wiring)}"


LOAD_ALL = """
import importlib, json, sys
names = json.loads(sys.argv[1])
for name in names:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0].startswith("dagster"))))
"""


def test_importing_every_domain_module_loads_no_dagster() -> None:
    names = [name for name, _ in MODULES]
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ALL, json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the domain packages loaded {', '.join(loaded[:10])}"


def test_the_subprocess_check_can_see_dagster() -> None:
    """The same probe reports Dagster when it is imported, so an empty answer means something."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ALL, json.dumps(["dagster"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "dagster" in json.loads(done.stdout.strip().splitlines()[-1])


def explains_its_length(source: str) -> bool:
    docstring = ast.get_docstring(ast.parse(source)) or ""
    return LONG_MODULE_MARKER.lower() in " ".join(docstring.split()).lower()


def test_the_length_marker_is_read_from_the_module_docstring_only() -> None:
    assert explains_its_length(f'"""Prices.\n\n{LONG_MODULE_MARKER} the tables are one unit."""\n')
    assert explains_its_length('"""Prices.\n\nLonger than 600\n   lines because x."""\n')
    assert not explains_its_length(f'"""Prices."""\n# {LONG_MODULE_MARKER} x\n')
    assert not explains_its_length(f'x = 1\n"""{LONG_MODULE_MARKER} x"""\n')


#: Every module of the package, wiring and apps included: the length rule holds for all.
ALL_MODULES = [
    (".".join(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts), path)
    for path in sorted(PACKAGE_DIR.rglob("*.py"))
]


@pytest.mark.parametrize("module,path", ALL_MODULES, ids=[name for name, _ in ALL_MODULES])
def test_long_modules_say_why(module: str, path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    assert lines <= MAX_LINES or explains_its_length(source), (
        f"{path.relative_to(PACKAGE_DIR.parent)} has {lines} lines (more than {MAX_LINES}) and "
        f"its module docstring does not say why ('{LONG_MODULE_MARKER} ...')"
    )
