"""Where the last replay wrote, noted under ZDTE_HOME so readers find it without a flag.

`zdte prediction` and `zdte report` look there when no store is configured: right after the demo
a newcomer's predictions are in the replay's storage, not in the local default store.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from zdte_assets.core import config

#: Where the last replay is noted, under ZDTE_HOME, so readers find its storage without a flag.
LAST_REPLAY = "last-replay.json"


def remember(result: dict[str, Any], output: Path) -> None:
    """Note the replay just finished (atomically: a reader never sees half a file)."""
    note = {
        "storage": result["storage"],
        "output": str(output.resolve()),
        "ticker": result["ticker"],
        "start": result["start"],
        "end": result["end"],
    }
    home = config.zdte_home()
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{LAST_REPLAY}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(note, indent=2))
    tmp.replace(home / LAST_REPLAY)


def last_replay() -> dict[str, str] | None:
    """What `remember` noted for the last replay under ZDTE_HOME, or None."""
    path = config.zdte_home() / LAST_REPLAY
    try:
        note = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) and isinstance(note.get("storage"), str) else None


def fallback(chosen: str | None) -> dict[str, str] | None:
    """The last replay's note when no store was chosen (neither `chosen`, a --storage flag, nor
    ZDTE_STORAGE_URL), else None: a chosen store is never second-guessed."""
    return None if chosen or config.configured_storage_url() else last_replay()
