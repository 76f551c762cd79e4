"""Experiment scripts: one per family, absl flags + ml_collections configs."""
