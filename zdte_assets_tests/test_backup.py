"""`zdte stack backup|restore`: what is refused before anything is touched. The round trip on
the real stack (databases and buckets back bit for bit) is in test_stack_security.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from zdte_assets.apps import backup, cli


def _fake_backup(directory: Path) -> Path:
    """A backup directory as `backup` writes it, with made-up dumps and objects."""
    directory.mkdir()
    (directory / "postgres").mkdir()
    (directory / "objects").mkdir()
    databases = {}
    for name in backup.DATABASES:
        data = f"dump of {name}".encode()
        (directory / "postgres" / f"{name}.dump").write_bytes(data)
        databases[name] = {
            "database": f"zdte_{name}",
            "file": f"postgres/{name}.dump",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    buckets = {}
    for setting in backup.BUCKETS:
        data = setting.encode()
        sha = hashlib.sha256(data).hexdigest()
        (directory / "objects" / sha).write_bytes(data)
        entries = [{"key": "a key/with spaces?", "size": len(data), "sha256": sha}] * 2
        buckets[setting] = {"bucket": setting.lower(), "objects": entries}
    manifest = {"format": backup.FORMAT, "created": "x", "databases": databases, "buckets": buckets}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_a_complete_backup_verifies(tmp_path: Path) -> None:
    manifest = backup.verify(_fake_backup(tmp_path / "b"))
    assert set(manifest["databases"]) == {"dagster", "mlflow", "optuna"}


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
        (lambda d: (d / "manifest.json").write_text("{"), "Expecting"),
        (lambda d: (d / "manifest.json").write_text('{"format": "other"}'), "unknown manifest"),
        (lambda d: (d / "postgres" / "mlflow.dump").unlink(), "postgres/mlflow.dump is missing"),
        (lambda d: (d / "postgres" / "optuna.dump").write_bytes(b"dump of optunA"), "differs"),
        (lambda d: next((d / "objects").iterdir()).write_bytes(b""), "differs"),
    ],
)
def test_an_incomplete_or_altered_backup_is_refused_in_one_line(
    tmp_path: Path, damage: object, reason: str
) -> None:
    directory = _fake_backup(tmp_path / "b")
    damage(directory)  # type: ignore[operator]
    with pytest.raises(backup.BackupError, match="is not a complete backup") as err:
        backup.verify(directory)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_a_backup_never_overwrites_a_directory(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.backup({}, tmp_path / "old")


def test_the_cli_wants_a_directory_for_backup_and_restore_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["stack", "backup"]) == 2
    assert "needs a directory" in capsys.readouterr().err
    assert cli.main(["stack", "status", str(tmp_path)]) == 2
    assert "takes no directory" in capsys.readouterr().err
    assert cli.main(["stack", "restore", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "is not a complete backup: no manifest.json" in err and err.count("\n") == 1
