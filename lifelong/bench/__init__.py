"""Benchmark support shared by the scripts under ``benchmarks/`` and ``lifelong bench``."""
