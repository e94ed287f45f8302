"""Benchmarks for segmentd: ``python -m bench`` (see ``bench/RESULTS.md``).

The runner starts the real server, drives it over HTTP from a separate
process, and compares every operation with a bare ASGI floor served by the
same uvicorn, with the incumbent's figures and with the design targets.
"""
