"""Fitted models on disk as plain files, and the local model cache's atomic installs.

A model directory holds the LightGBM booster as text and zdte's metadata as JSON: readable,
diffable and never unpickled (a pickle ties stored models to code versions and is unsafe to
load). The model cache keeps one such directory per registered version; two runs may fill the
same entry at once, so an entry only ever appears whole, by the rename of a finished copy.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb

from zdte_assets.features.volatility import Calibration
from zdte_assets.model.fitting import FittedModel
from zdte_assets.model.params import ModelParams

METADATA_FILE = "metadata.json"
BOOSTER_FILE = "booster.txt"
#: Version of the metadata layout; a directory of another version is refused, not guessed at.
METADATA_FORMAT = 1


def save_model_dir(model: FittedModel, path: str | os.PathLike[str]) -> Path:
    """Text booster + JSON metadata: readable, diffable, and never unpickled."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.booster.save_model(str(out / BOOSTER_FILE))
    meta = {
        "format": METADATA_FORMAT,
        "features": list(model.features),
        "shrinkage": model.shrinkage,
        "sigma": model.sigma,
        "params": model.params.to_dict(),
        "diagnostics": model.diagnostics,
        "calibration": model.calibration.to_dict(),
    }
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return out


def load_model_dir(path: str | os.PathLike[str]) -> FittedModel:
    """The model ``save_model_dir`` wrote; a foreign format or mismatched booster is refused."""
    src = Path(path)
    meta = json.loads((src / METADATA_FILE).read_text())
    if meta.get("format") != METADATA_FORMAT:
        raise ValueError(f"unsupported model metadata format {meta.get('format')!r}")
    booster = lgb.Booster(model_file=str(src / BOOSTER_FILE))
    features = tuple(meta["features"])
    if tuple(booster.feature_name()) != features:
        raise ValueError("booster feature names do not match metadata")
    return FittedModel(
        booster=booster,
        features=features,
        shrinkage=float(meta["shrinkage"]),
        sigma=float(meta["sigma"]),
        params=ModelParams.from_dict(meta["params"]),
        diagnostics=dict(meta.get("diagnostics", {})),
        calibration=Calibration.from_dict(meta["calibration"])
        if "calibration" in meta
        else Calibration(),
    )


def install_dir(
    dest: Path, fill: Callable[[Path], object], complete: Callable[[Path], bool]
) -> Path:
    """Make ``dest`` a directory that ``fill`` wrote in full, safely against concurrent callers.

    ``fill`` writes into a fresh temporary sibling which is then renamed onto ``dest``; a rename
    onto an existing directory fails, so the first finished writer wins and every later one
    discards its copy. Readers therefore see no entry or a whole one, never a half-written one,
    and nothing that another writer installed is overwritten. ``complete(dest)`` says whether an
    entry is already whole (then nothing is written).
    """
    if complete(dest):
        return dest
    if dest.exists() and not complete(dest):
        # Only a copy written in place (before entries were installed by rename) can be
        # incomplete; it would block every rename, so it goes.
        shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        fill(tmp)
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not complete(dest):
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
