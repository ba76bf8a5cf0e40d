"""zdte: same-day-close prediction and 0-DTE decisions as Dagster assets."""
