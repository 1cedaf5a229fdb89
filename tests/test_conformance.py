"""The platforms' routing behaviour, case for case (tests/conformance/), and the generated table.

A case either agrees with its platform, or differs on purpose and then behaves as its `percel`
expectation says; docs/CONFORMANCE.md must be the table these cases produce.
"""
from __future__ import annotations

import pytest

from tests.conformance import report
from tests.conformance.harness import all_cases, mismatches, run_case

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case):
    assert not mismatches(case.wanted, run_case(case)), (case.origin, run_case(case))


def test_cases_are_unique_and_sourced():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert all(case.origin and (case.percel is not None) == bool(case.differs) for case in CASES)


def test_table_is_current():
    assert report.main(["--check"]) == 0, "run: python -m tests.conformance.report"
