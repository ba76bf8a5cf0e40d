"""Where each stored value lives: the one place object keys are spelled.

The IO manager writes asset values under these keys and every reader outside Dagster (the CLI,
the replay, the domain's own lookups) finds them through the same functions, so a change of
layout is one edit here.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Extensions in the order they are looked for when loading an asset value.
EXTENSIONS = ("parquet", "json")


def object_key(asset_key_path: Sequence[str], partition_key: str | None, ext: str) -> str:
    """The storage key of one asset value: ``a/b/<partition>.<ext>`` or ``a/b.<ext>``."""
    base = "/".join(asset_key_path)
    return f"{base}/{partition_key}.{ext}" if partition_key is not None else f"{base}.{ext}"


def asset_value_key(ticker: str, asset: str, partition_key: str | None, ext: str) -> str:
    """The key of one ticker's asset value (asset keys are ``[ticker, asset]``)."""
    return object_key([ticker, asset], partition_key, ext)
