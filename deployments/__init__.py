"""Deployment names (the one source for prefect.yaml and dispatch) and dispatch after commit."""
