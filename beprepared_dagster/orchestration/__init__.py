"""Workflow → Dagster: partitions, the asset factory, sensors, instance config, headless runs."""
