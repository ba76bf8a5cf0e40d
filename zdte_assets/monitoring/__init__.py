"""Drift statistics, triggers, reports and their false-alarm rates."""
