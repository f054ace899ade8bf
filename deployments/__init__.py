"""Prefect wiring: every flow and deployment name (one source for prefect.yaml, dispatch and
the flows), and the automations the pipeline relies on."""
