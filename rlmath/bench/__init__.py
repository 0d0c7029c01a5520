"""Benchmarks against peers, each measured in one run (``rlmath bench ...``)."""
