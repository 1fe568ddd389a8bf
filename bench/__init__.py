"""Benchmarks for Tessera beside Orthanc and a physical limit, measured in the same run.

Run them all with `make bench` (or `python -m bench.run_all [--quick]`); see bench/README.md.
"""
