"""The whole quality gate in one command: ruff lint, ruff format check, mypy (strict on the domain
packages), then pytest.

Run through `python3 run.py test`; extra arguments go to pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The packages without Dagster: held to `mypy --strict`, the wiring and tests to the project's
#: own (less strict) settings, since Dagster's decorators and test fixtures are loosely typed.
DOMAIN = ("core", "data", "features", "model", "trading", "monitoring", "evaluation", "storage")


def _step(name: str, cmd: list[str]) -> None:
    print(f"== {name}: {' '.join(cmd[2:] if cmd[1] == '-m' else cmd)}", flush=True)
    code = subprocess.run(cmd, cwd=ROOT).returncode
    if code != 0:
        print(f"== {name} failed (exit {code})", flush=True)
        sys.exit(code)


def main(pytest_args: list[str]) -> None:
    py = sys.executable
    _step("lint", [py, "-m", "ruff", "check", "."])
    _step("format", [py, "-m", "ruff", "format", "--check", "."])
    _step("types", [py, "-m", "mypy"])
    strict = [arg for pkg in DOMAIN for arg in ("-p", f"zdte_assets.{pkg}")]
    _step("strict types (domain)", [py, "-m", "mypy", "--strict", *strict])
    _step("tests", [py, "-m", "pytest", *pytest_args])


if __name__ == "__main__":
    main(sys.argv[1:])
