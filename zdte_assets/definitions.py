"""The code location Dagster loads (`dagster dev -m zdte_assets.definitions`, the code server,
docker): the definitions themselves are built in `zdte_assets.orchestration.definitions`."""

from zdte_assets.orchestration.definitions import build_definitions, defs

__all__ = ["build_definitions", "defs"]
