"""Benchmarks against the peers; each ``bench_*.py`` module has a ``main()`` and appends to RESULTS.md."""
