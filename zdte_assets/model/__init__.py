"""Fitting, the Optuna study, model versions and the domain steps of one trading day."""
