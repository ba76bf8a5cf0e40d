"""Drift monitoring, one concern per module: `statistics` (KS, PSI, Wasserstein, Holm),
`config` (`DriftConfig`, the thresholds), `triggers` (the four re-optimization rules),
`report` (the `DriftReport` of a day), `cooldown` (after a firing) and `false_alarms` (how often
the rules fire on unchanged data, and the documented table)."""
