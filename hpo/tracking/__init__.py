"""Experiment tracking: mirror studies and trials to MLflow (an observer of the store)."""

from hpo.tracking._mlflow import MlflowTracker, resolve_tracking_uri

__all__ = ["MlflowTracker", "resolve_tracking_uri"]
