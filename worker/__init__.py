"""Worker start-up: `python -m worker` starts a Prefect worker with a warm forkserver beside
it; the work pool's command, `python -m worker.launch`, forks each flow run from it."""
