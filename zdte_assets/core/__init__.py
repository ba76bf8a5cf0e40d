"""Foundations every other package may use: the NYSE calendar, settings read from the environment, error lines, timing."""
