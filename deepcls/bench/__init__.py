"""Benchmarks of the deepcls engine, run as modules (``python -m deepcls.bench.loader``)."""
