"""Build log redaction (build_runner/redaction.py): every cheap form of a secret is masked,
table-tested without a build."""
from __future__ import annotations

import base64
import codecs
import re
import urllib.parse

import pytest

from build_runner.redaction import Redactor
from build_runner.sandbox.base import MAX_LINE_BYTES, LineSplitter

SECRET = "s3cr3t/Tok+en=?&ü~x"  # '/', '+', '=', '?', '&' and a non-ASCII letter: each encoder differs
ENV = {"API_TOKEN": SECRET}


def b64_inside(prefix: bytes, encode=base64.b64encode) -> str:
    """What a tool prints for `prefix + SECRET + "\\n"` in base64, as `echo ... | base64` does."""
    return encode(prefix + SECRET.encode() + b"\n").decode()


FORMS = {
    "clear": SECRET,
    "base64, aligned": b64_inside(b""),
    "base64, 1 byte in": b64_inside(b"u:"[:1]),
    "base64, 2 bytes in": b64_inside(b"u:"),
    "base64 url-safe, aligned": b64_inside(b"", base64.urlsafe_b64encode),
    "base64 url-safe, 1 byte in": b64_inside(b"x", base64.urlsafe_b64encode),
    "base64 url-safe, 2 bytes in": b64_inside(b"xy", base64.urlsafe_b64encode),
    "basic auth header": "Basic " + base64.b64encode(b"user:" + SECRET.encode()).decode(),
    "base64 without padding": base64.b64encode(SECRET.encode()).decode().rstrip("="),
    "hex": SECRET.encode().hex(),
    "HEX": SECRET.encode().hex().upper(),
    "hex of a longer text": ("token=" + SECRET).encode().hex(),
    "URL-encoded (quote)": urllib.parse.quote(SECRET, safe=""),
    "URL-encoded (quote_plus)": urllib.parse.quote_plus(SECRET),
    "encodeURIComponent": urllib.parse.quote(SECRET, safe="!~*'()"),
    "in a query string": "https://api.example.com/?token=" + urllib.parse.quote(SECRET, safe=""),
    "reversed": SECRET[::-1],
}


def recoverable(text: str) -> bool:
    """Whether 4 bytes of SECRET can be read back from `text` by undoing any of the forms:
    decoding each run of base64 or hex characters at every offset, percent-decoding, reversing."""
    wanted = SECRET.encode()
    windows = {wanted[i:i + 4] for i in range(len(wanted) - 3)}
    candidates = [text.encode(), text[::-1].encode(), urllib.parse.unquote_plus(text).encode()]
    for run in re.findall(r"[A-Za-z0-9+/_-]{4,}", text):
        run = run.replace("-", "+").replace("_", "/")
        for offset in range(4):
            usable = run[offset:][: (len(run) - offset) // 4 * 4]
            candidates.append(base64.b64decode(usable))
    for run in re.findall(r"[0-9A-Fa-f]{8,}", text):
        candidates += [bytes.fromhex(run[o:][: (len(run) - o) // 2 * 2]) for o in range(2)]
    return any(window in candidate for candidate in candidates for window in windows)


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_each_form_of_the_secret_is_masked_in_a_log_line(form):
    assert recoverable(form)  # the oracle reads the form back before redaction
    redacted = Redactor(ENV)(f"debug: sending {form} now")
    assert redacted.startswith("debug: sending ") and redacted.endswith(" now")
    assert "***" in redacted and not recoverable(redacted)


def test_a_url_encoded_lowercase_form_is_masked():
    lowered = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(SECRET, safe=""))
    assert Redactor(ENV)(lowered) == "***"


def test_unrelated_text_and_short_values_are_left_alone():
    line = "added 312 packages in 4s; yes; 1"
    assert Redactor({"A": "yes", "B": "1", "C": SECRET})(line) == line


def test_two_secrets_next_to_each_other_are_both_masked():
    redactor = Redactor({"A": "alpha-secret", "B": "beta-secret"})
    assert redactor("alpha-secretbeta-secret " + "terces-ateb") == "****** ***"


CUTS = {"before the first character": 0, "after one character": 1,
        "in the middle": len(SECRET) // 2, "before the last character": len(SECRET) - 1}


@pytest.mark.parametrize("inside", CUTS.values(), ids=CUTS.keys())
@pytest.mark.parametrize("form", ["clear", "hex", "reversed", "base64, aligned"])
def test_a_secret_straddling_the_64_KiB_line_cut_is_masked_on_both_sides(form, inside):
    printed = FORMS[form]
    cut_inside = round(inside * len(printed) / len(SECRET))
    filler = "x" * (MAX_LINE_BYTES - cut_inside)  # ASCII: one byte per character
    lines: list[str] = []
    redactor = Redactor(ENV, cut_bytes=MAX_LINE_BYTES)
    splitter = LineSplitter(lambda line: lines.extend(redactor.feed(line)))
    # The newline comes a read later, so the splitter must cut the line where it is over.
    output = (filler + printed + " tail" + "y" * 8192 + "\nnext line\n").encode()
    for start in range(0, len(output), 4096):  # a pipe's usual chunk, as pump() reads it
        splitter.feed(output[start:start + 4096])
    splitter.close()
    lines += redactor.flush()
    assert len(lines) == 3 and lines[-1] == "next line"
    assert not recoverable(lines[0]) and not recoverable(lines[1])
    assert lines[0].startswith("xxx") and " tail" in lines[1]


def test_lines_under_the_cut_are_logged_at_once_and_flush_has_nothing_left():
    redactor = Redactor(ENV, cut_bytes=MAX_LINE_BYTES)
    assert redactor.feed("short " + SECRET) == ["short ***"]
    assert redactor.flush() == []


def test_a_line_of_several_cut_pieces_masks_a_secret_at_each_cut():
    redactor = Redactor(ENV, cut_bytes=32)
    pieces = ["a" * 22 + SECRET[:10], SECRET[10:] + "b" * 19 + SECRET[:3], SECRET[3:] + "c"]
    out = [line for piece in pieces for line in redactor.feed(piece)] + redactor.flush()
    assert out == ["a" * 22 + "***", "***" + "b" * 19 + "***", "***c"]


def test_a_rot13_of_the_secret_is_beyond_redaction():
    # Documented limit (README "Build environment"): other transformations pass.
    rot = codecs.encode(SECRET, "rot13")
    assert Redactor(ENV)(rot) == rot
