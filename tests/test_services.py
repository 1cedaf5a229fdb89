"""devstack's admin token: what `make run` prints and keeps between starts."""
import stat

from devstack.services import admin_token


def test_make_run_keeps_one_private_admin_token_across_starts(tmp_path):
    first = admin_token(tmp_path, {})
    kept = tmp_path / "admin-token"
    assert kept.read_text().strip() == first and len(first) > 40
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert admin_token(tmp_path, {}) == first                      # the next start reuses it


def test_percel_admin_token_wins_and_writes_nothing(tmp_path):
    assert admin_token(tmp_path, {"PERCEL_ADMIN_TOKEN": "chosen"}) == "chosen"
    assert not (tmp_path / "admin-token").exists()
