"""Publishing a build's output (build_runner/publish.py) against the real S3 endpoint."""
from __future__ import annotations

import pytest

from build_runner.errors import BuildFailed
from build_runner.publish import OutputLimits, _check_output_limits, publish
from chalicelib import keys


def test_published_output_is_served_from_one_manifest_written_once(ctx, tmp_path):
    project = tmp_path / "project"
    output = project / "dist"
    output.mkdir(parents=True)
    (output / "index.html").write_text("<h1>first</h1>")
    (project / "vercel.json").write_text('{"cleanUrls": true}')
    lines: list[str] = []
    limits = OutputLimits.from_settings(ctx.settings)
    publish(ctx.store, "pubpubpubpubpubp", output, project, spa=True, limits=limits,
            say=lines.append)
    document = ctx.store.get_json(keys.deployment_manifest("pubpubpubpubpubp"))
    assert document["config"]["clean_urls"] is True and document["config"]["spa"] is True
    sha = document["files"]["index.html"]["sha256"]
    assert ctx.store.get_blob(sha) == b"<h1>first</h1>"
    assert lines == ["percel: uploaded 1 files (1 new blobs, 14 bytes) from dist/"]
    # A second attempt publishing the same deployment keeps the first output.
    (output / "index.html").write_text("<h1>second</h1>")
    publish(ctx.store, "pubpubpubpubpubp", output, project, spa=True, limits=limits,
            say=lines.append)
    assert ctx.store.get_json(keys.deployment_manifest("pubpubpubpubpubp")) == document
    assert "another attempt already published" in lines[1]


def test_an_unreadable_site_config_fails_the_build_with_its_reason(ctx, tmp_path):
    output = tmp_path / "dist"
    output.mkdir()
    (output / "index.html").write_text("x")
    (output / "_redirects").write_bytes(b"/a /b\n\xff\xfe\n")
    with pytest.raises(BuildFailed, match="_redirects: not valid UTF-8"):
        publish(ctx.store, "badbadbadbadbadb", output, tmp_path, spa=False,
                limits=OutputLimits.from_settings(ctx.settings))
    assert not ctx.store.exists(keys.deployment_manifest("badbadbadbadbadb"))


def test_bad_config_lines_are_skipped_said_in_the_log_and_returned(ctx, tmp_path):
    """Bad lines never sink a deploy: the rest of the config is published, and each skipped
    line is named in the build log and returned for the deployment record."""
    output = tmp_path / "dist"
    output.mkdir()
    (output / "index.html").write_text("x")
    (output / "_redirects").write_text("/only-a-source\n/a /b 302 # moved\n")
    lines: list[str] = []
    warnings = publish(ctx.store, "skipskipskipskip", output, tmp_path, spa=False,
                       limits=OutputLimits.from_settings(ctx.settings), say=lines.append)
    assert warnings == ["_redirects line 1: no destination after '/only-a-source'; line skipped"]
    assert f"percel: config warning: {warnings[0]}" in lines
    config = ctx.store.get_json(keys.deployment_manifest("skipskipskipskip"))["config"]
    assert [(rule["destination"], rule["status"]) for rule in config["netlify_redirects"]] == [("/b", 302)]
    assert config["warnings"] == warnings


def test_config_rules_percel_cannot_apply_are_named_in_the_build_log(ctx, tmp_path):
    """A rule the platforms accept but a static host cannot apply is dropped, and the user
    reads why in the log instead of wondering why the rule does nothing."""
    output = tmp_path / "dist"
    output.mkdir()
    (output / "index.html").write_text("x")
    (tmp_path / "vercel.json").write_text('{"routes": [{"src": "/a", "dest": "/b"}]}')
    lines: list[str] = []
    publish(ctx.store, "warnwarnwarnwarn", output, tmp_path, spa=False,
            limits=OutputLimits.from_settings(ctx.settings), say=lines.append)
    assert "percel: config warning: vercel.json: legacy `routes` is not supported and was ignored" in lines


def test_the_project_netlify_toml_is_published_and_an_invalid_one_fails_the_build(ctx, tmp_path):
    project = tmp_path / "project"
    output = project / "dist"
    output.mkdir(parents=True)
    (output / "index.html").write_text("x")
    (project / "netlify.toml").write_text('[[redirects]]\nfrom = "/*"\nto = "/index.html"\nstatus = 200\n')
    limits = OutputLimits.from_settings(ctx.settings)
    publish(ctx.store, "tomltomltomltoml", output, project, spa=False, limits=limits)
    config = ctx.store.get_json(keys.deployment_manifest("tomltomltomltoml"))["config"]
    assert [(r["destination"], r["status"]) for r in config["netlify_redirects"]] == [("/index.html", 200)]
    (project / "netlify.toml").write_text('[[redirects]\nfrom = "/a"\n')
    with pytest.raises(BuildFailed, match=r"netlify\.toml: invalid TOML"):
        publish(ctx.store, "badtomlbadtomlba", output, project, spa=False, limits=limits)
    assert not ctx.store.exists(keys.deployment_manifest("badtomlbadtomlba"))


def test_output_over_the_file_limit_fails_the_build_before_the_scan(tmp_path):
    output = tmp_path / "dist"
    (output / "assets").mkdir(parents=True)
    for index in range(10):
        (output / "assets" / f"chunk-{index}.js").write_text("x")
    _check_output_limits(output, max_files=11, max_bytes=1000)  # 10 files + the folder
    (output / "index.html").write_text("<h1>one too many</h1>")
    with pytest.raises(BuildFailed, match=r"more than 11 files and folders \(MAX_OUTPUT_FILES\)"):
        _check_output_limits(output, max_files=11, max_bytes=1000)


def test_output_over_the_byte_limit_fails_the_build(tmp_path):
    output = tmp_path / "dist"
    output.mkdir()
    (output / "index.html").write_bytes(b"x" * 600)
    (output / "copy.html").symlink_to("index.html")  # read (and uploaded) twice: counted twice
    with pytest.raises(BuildFailed, match=r"larger than 1000 bytes \(MAX_OUTPUT_BYTES\)"):
        _check_output_limits(output, max_files=100, max_bytes=1000)


def test_links_out_of_the_output_count_nothing(tmp_path):
    """They are never uploaded, and stat-ing them must not let a build probe host files."""
    output = tmp_path / "dist"
    output.mkdir()
    (output / "index.html").write_text("<h1>hi</h1>")
    big = tmp_path / "outside.bin"
    big.write_bytes(b"x" * 5000)
    (output / "big.bin").symlink_to(big)
    (output / "loop").symlink_to("loop")
    _check_output_limits(output, max_files=100, max_bytes=1000)
