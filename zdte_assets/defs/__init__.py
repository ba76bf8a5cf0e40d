"""Dagster wiring: assets, checks, resources, jobs, schedules and sensors around the domain modules."""
