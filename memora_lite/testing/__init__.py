"""Helpers for tests and benchmarks: synthetic SQuAD-shaped data (and, later, the pytest plugin)."""
