"""Failure reasons (build_runner/errors.py): the sandbox's refusal lines, lifted into one line."""
import pytest

from build_runner.errors import refusal_note

PREFIX = "percel sandbox: network access refused: "


@pytest.mark.parametrize("message, note", [
    ("example.com:443 is not on the registry allow-list",
     "network access to example.com:443 was refused (not on the registry allow-list)"),
    ("registry.npmjs.org:80: only port 443 is allowed",
     "network access to registry.npmjs.org:80 was refused (only port 443 is allowed)"),
    ("evil.example resolves to 10.0.0.1, a private or reserved address",
     "network access to evil.example was refused (resolves to 10.0.0.1, a private or reserved address)"),
    ("GET http://x/: only HTTPS (CONNECT) is allowed",
     "network access was refused (GET http://x/: only HTTPS (CONNECT) is allowed)"),
    ("more than 64 connections at once", "network access was refused (more than 64 connections at once)"),
])
def test_a_refusal_names_its_host_when_it_has_one(message, note):
    assert refusal_note(PREFIX + message) == note


def test_other_lines_are_no_refusal_and_notes_stay_one_short_line():
    assert refusal_note("npm error code ECONNREFUSED") is None
    note = refusal_note(PREFIX + "a\nb" + "x" * 500)
    assert note is not None and "\n" not in note and len(note) < 300
