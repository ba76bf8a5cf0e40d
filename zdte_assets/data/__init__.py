"""Market data in: sources, validation of bars, split adjustment, synthetic series with known answers."""
