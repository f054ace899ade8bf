"""The local stack (a Prefect server, worker and subscriber on this machine) and the main job
that books on it: `make run`, and what the integration tests and benches start."""
