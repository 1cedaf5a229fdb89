"""RFC 9110 pieces on their own: what a client asking for ranges, codings or revalidation gets."""
import pytest

from chalicelib.serving.http_rules import not_modified, parse_range, pick_encoding

ENTRY = {"encodings": {"br": {"sha256": "b", "size": 1}, "gzip": {"sha256": "g", "size": 2}}}


@pytest.mark.parametrize("header, size, expected", [
    (None, 100, None),
    ("bytes=0-9", 100, (0, 9)),
    ("bytes=90-", 100, (90, 99)),
    ("bytes=-10", 100, (90, 99)),
    ("bytes=-500", 100, (0, 99)),
    ("bytes=50-5000", 100, (50, 99)),
    ("bytes=100-", 100, "unsatisfiable"),
    ("bytes=-0", 100, "unsatisfiable"),
    ("bytes=9-0", 100, None),          # invalid: ignored, whole file
    ("bytes=0-1,5-6", 100, None),      # several ranges: a server may ignore Range
    ("items=0-1", 100, None),
    ("bytes=-", 100, None),
    ("bytes=200-150", 100, None),      # invalid even past the end: ignored
    ("bytes=" + "9" * 5000 + "-", 100, "unsatisfiable"),   # more digits than int() reads
    ("bytes=0-" + "9" * 5000, 100, (0, 99)),
    ("bytes=-" + "9" * 5000, 100, (0, 99)),
    ("bytes=" + "9" * 5000 + "-1", 100, None),
    ("bytes=00000000000000000000000000000000000000000000000005-9", 100, (5, 9)),
    ("bytes=\u0661-\u0662", 100, None),   # Arabic-Indic digits are not DIGIT
    ("bytes=\u00b2-", 100, None),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("accept, expected", [
    (None, None), ("", None), ("gzip", "gzip"), ("gzip, br", "br"), ("br;q=0, gzip", "gzip"),
    ("*", "br"), ("*;q=0", None), ("identity", None), ("x-gzip", "gzip"), ("br;q=bogus", None),
])
def test_pick_encoding(accept, expected):
    assert pick_encoding(accept, ENTRY) == expected


def test_a_file_without_variants_is_sent_as_it_is():
    assert pick_encoding("br, gzip", {}) is None


@pytest.mark.parametrize("header, expected", [
    (None, False), ('"abc"', True), ('W/"abc"', True), ('"x", "abc"', True), ("*", True),
    ('"abd"', False),
])
def test_not_modified(header, expected):
    assert not_modified(header, '"abc"') is expected
