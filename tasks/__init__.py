"""The steps of the post-commit flows, grouped by concern, sharing one retry policy."""
