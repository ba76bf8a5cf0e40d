"""zdte: same-day-close prediction and 0-DTE decisions as Dagster assets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zdte")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"
