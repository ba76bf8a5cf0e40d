"""Entry points people run: the CLI, the replay and its report, the production stack, its login gate and backups."""
