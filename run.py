#!/usr/bin/env python3
"""Bootstrap and run zdte with nothing but Python 3.11+.

    python3 run.py demo    # the main job on the bundled sample
    python3 run.py test    # lint, format check, type check and the whole test suite
    python3 run.py zdte ARGS...   # any zdte command inside the locked environment

Both set up `.venv` from `uv.lock` first (uv itself is installed into `.tools/` from PyPI at a
pinned version), so a fresh clone needs no other step. Why a script rather than a Makefile: a
fresh machine is only promised Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
UV_VERSION = "0.13.8"
TOOLS = ROOT / ".tools"
VENV = ROOT / ".venv"


def _bin(env_dir: Path, name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    return env_dir / sub / name


def _run(cmd: list[str], **kwargs: object) -> None:
    result = subprocess.run(cmd, cwd=ROOT, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_environment() -> Path:
    """Create `.venv` from the lock file; cheap when it is already in sync."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under any python3
        sys.exit("zdte needs Python 3.11 or newer; this is " + sys.version.split()[0])
    uv = _bin(TOOLS, "uv")
    if not uv.exists():
        print(f"setting up uv {UV_VERSION} in {TOOLS} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        _run(
            [
                str(_bin(TOOLS, "python")),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"uv=={UV_VERSION}",
            ]
        )
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_PROJECT_ENVIRONMENT=str(VENV))
    _run([str(uv), "sync", "--frozen", "--quiet", "--python", sys.executable], env=env)
    return VENV


def main(argv: list[str]) -> None:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return
    command, rest = argv[0], argv[1:]
    env_dir = ensure_environment()
    python = str(_bin(env_dir, "python"))
    if command == "demo":
        os.execv(python, [python, "-m", "zdte_assets.apps.cli", "demo", *rest])
    elif command == "test":
        os.execv(python, [python, "-m", "zdte_assets_tests.check", *rest])
    elif command == "zdte":
        os.execv(python, [python, "-m", "zdte_assets.apps.cli", *rest])
    else:
        sys.exit(f"unknown command {command!r}: use demo, test or zdte")


if __name__ == "__main__":
    main(sys.argv[1:])
