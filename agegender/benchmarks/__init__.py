"""Benchmark helpers behind ``agegender benchmark``: speed per backend and the model-selection table.

Kept apart from the runtime (``agegender.inference``): they measure it, they are not part of it.
"""
