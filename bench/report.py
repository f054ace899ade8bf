"""Writes the results of `python -m bench.pipeline` into docs/performance.md, with a chart."""
