"""Typed records for every value that crosses a boundary (between assets, into storage, to the
desk's own tools), and their one JSON/Parquet serialization.

Records are frozen pydantic models: pydantic gives validation on read, JSON in and out, and the
JSON Schema the desk validates predictions against, from the same class (docs/CONTRACTS.md).
Each section below belongs to one part of the domain; keep the sections apart.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """Base of every record: immutable, unknown fields refused, so a renamed field fails loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- model: tuned versions and the model pointer -------------------------------------------------


# --- trading: the prediction and its outcome -----------------------------------------------------


# --- monitoring: the drift report ----------------------------------------------------------------
