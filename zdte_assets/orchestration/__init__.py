"""Dagster wiring: definitions, partitions, resources, IO manager, assets, checks, jobs, schedules, sensors. The only package besides apps that imports Dagster."""
