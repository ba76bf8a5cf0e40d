"""Causal feature rows (known at 09:30) and the range-based volatility they build on."""
