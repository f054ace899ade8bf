"""Steps of the scheduling concern and of the periodic delivery of due work."""
