"""One module per Prefect flow. Keep imports light: each flow run is a fresh process."""
