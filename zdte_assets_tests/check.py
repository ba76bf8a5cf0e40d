"""The whole quality gate in one command: ruff lint, ruff format check, mypy, then pytest.

Run through `python3 run.py test`; extra arguments go to pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    _step("tests", [py, "-m", "pytest", *pytest_args])


if __name__ == "__main__":
    main(sys.argv[1:])
