"""Helpers for tests and benchmarks: the ``memora`` pytest plugin (:mod:`.plugin`), filling collections
from rows or files (:mod:`.seeding`), and synthetic SQuAD-shaped data (:mod:`.squad`)."""
