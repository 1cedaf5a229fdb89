"""Conformance tables: cases re-expressed from the hosting platforms' own documentation and
public test suites, run against percel's config compiler and resolver.

Each case module (every module here but harness.py and report.py) holds `CASES`, a list of `Case`; each
group of cases names the upstream file its facts came from. `tests/test_conformance.py` runs
them all; `python -m tests.conformance.report` writes docs/CONFORMANCE.md from them.
"""
