"""The deploy request body: every bad field is refused with a 400 that names it."""
import pytest

from chalicelib.errors import BadRequest
from chalicelib.pipeline.validation import check_repo_url, parse_deploy_request


def public(_host):
    return ["93.184.216.34"]


def private(_host):
    return ["10.0.0.5"]


@pytest.mark.parametrize("body, field", [
    ({}, "repo_url"),
    ({"repo_url": ""}, "repo_url"),
    ({"repo_url": 42}, "repo_url"),
    ({"repo_url": "https://example.com/r.git", "colour": "red"}, "colour"),
    ({"repo_url": "https://example.com/r.git", "ref": "--upload-pack=x"}, "ref"),
    ({"repo_url": "https://example.com/r.git", "ref": "a..b"}, "ref"),
    ({"repo_url": "https://example.com/r.git", "root_dir": "../up"}, "root_dir"),
    ({"repo_url": "https://example.com/r.git", "root_dir": "/etc"}, "root_dir"),
    ({"repo_url": "https://example.com/r.git", "output_dir": "a/../../b"}, "output_dir"),
    ({"repo_url": "https://example.com/r.git", "build_command": ""}, "build_command"),
    ({"repo_url": "https://example.com/r.git", "install_command": ["npm"]}, "install_command"),
    ({"repo_url": "https://example.com/r.git", "env": {"PATH": "/evil"}}, "env"),
    ({"repo_url": "https://example.com/r.git", "env": {"A": 1}}, "env"),
    ({"repo_url": "https://example.com/r.git", "env": {"1BAD": "x"}}, "env"),
    ({"repo_url": "https://example.com/r.git", "env": "A=1"}, "env"),
    ({"repo_url": "https://example.com/r.git", "node_version": 22}, "node_version"),
    ({"repo_url": "https://example.com/r.git", "node_version": ">=20"}, "node_version"),
    ({"repo_url": "https://example.com/r.git", "node_version": "22.11.0"}, "node_version"),
    ({"repo_url": "https://example.com/r.git", "node_version": "lts"}, "node_version"),
    ({"repo_url": "https://example.com/r.git", "node_version": ""}, "node_version"),
])
def test_bad_fields_are_named(body, field):
    with pytest.raises(BadRequest) as refused:
        parse_deploy_request(body, local=False, resolve=public)
    assert refused.value.field == field
    assert refused.value.status == 400


@pytest.mark.parametrize("given, stored", [("22", "22"), ("22.x", "22"), (" 20 ", "20"), (None, None)])
def test_node_version_is_a_major(given, stored):
    parsed = parse_deploy_request({"repo_url": "https://example.com/r.git", "node_version": given},
                                  local=False, resolve=public)
    assert parsed.node_version == stored


def test_body_must_be_an_object():
    with pytest.raises(BadRequest, match="JSON object"):
        parse_deploy_request(["https://example.com/r.git"], local=False, resolve=public)


def test_a_full_valid_request_is_normalised():
    parsed = parse_deploy_request({
        "repo_url": "https://example.com/r.git", "ref": "release/v1", "root_dir": "./web/",
        "install_command": " npm ci ", "build_command": "npm run build", "output_dir": "dist",
        "env": {"VITE_API": "https://api"}}, local=False, resolve=public)
    assert parsed.root_dir == "web" and parsed.install_command == "npm ci"
    assert parsed.env == {"VITE_API": "https://api"}


@pytest.mark.parametrize("url, local, resolve, ok", [
    ("https://example.com/r.git", False, public, True),
    ("http://example.com/r.git", False, public, False),
    ("file:///tmp/repo", False, public, False),
    ("file:///tmp/repo", True, public, True),
    ("file://remote-host/tmp/repo", True, public, False),
    ("https://internal.example/r.git", False, private, False),
    ("https://127.0.0.1/r.git", False, lambda h: ["127.0.0.1"], False),
    ("https://metadata/r.git", False, lambda h: ["169.254.169.254"], False),
    ("http://127.0.0.1:9000/r.git", True, lambda h: ["127.0.0.1"], True),
    ("https://user:token@example.com/r.git", False, public, False),
    ("ext::sh -c touch% /tmp/pwned", True, public, False),
    ("ssh://git@example.com/r.git", False, public, False),
])
def test_repo_url_policy_by_stage(url, local, resolve, ok):
    if ok:
        assert check_repo_url(url, local=local, resolve=resolve) == url
    else:
        with pytest.raises(BadRequest):
            check_repo_url(url, local=local, resolve=resolve)


@pytest.mark.parametrize("url", ["https://example.com:99999/r.git", "https://example.com:abc/r.git",
                                 "https://example.com:0/r.git", "https://example.com:-1/r.git"])
@pytest.mark.parametrize("local", [False, True])
def test_a_port_that_is_not_a_tcp_port_is_a_400_naming_repo_url(url, local):
    with pytest.raises(BadRequest) as refused:
        parse_deploy_request({"repo_url": url}, local=local, resolve=public)
    assert refused.value.status == 400
    assert refused.value.to_json()["error"]["field"] == "repo_url"


def loopback(_host):
    return ["127.0.0.1", "::1"]


@pytest.mark.parametrize("url, resolve", [
    ("file:///srv/repos/site", None),
    ("http://127.0.0.1:9000/r.git", None),
    ("https://127.0.0.2/r.git", None),
    ("http://[::1]:9000/r.git", None),
    ("http://localhost:9000/r.git", loopback),
    ("http://git.localhost/r.git", loopback),
])
def test_the_local_stage_accepts_file_urls_and_loopback_hosts(url, resolve):
    assert check_repo_url(url, local=True, **({"resolve": resolve} if resolve else {})) == url


# Where clouds keep their instance metadata (and with it credentials), and other addresses
# that are neither loopback nor public. None may be cloned from, in any stage.
METADATA_AND_PRIVATE = [
    "169.254.169.254",         # AWS, GCP, Azure, DigitalOcean, OpenStack, Oracle
    "fd00:ec2::254",           # AWS over IPv6
    "100.100.100.200",         # Alibaba Cloud
    "192.0.0.192",             # Oracle Cloud (legacy)
    "169.254.170.2",           # AWS ECS task credentials
    "fe80::a9fe:a9fe",         # IPv6 link-local
    "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b::a9fe:a9fe",      # NAT64 of 169.254.169.254 (RFC 6052)
    "10.0.0.5", "172.16.0.1", "192.168.1.1", "fd12::1",
]


@pytest.mark.parametrize("address", METADATA_AND_PRIVATE)
@pytest.mark.parametrize("local", [False, True])
def test_metadata_link_local_and_private_hosts_are_refused_in_every_stage(address, local):
    for url in (f"https://{'[' + address + ']' if ':' in address else address}/r.git",
                "https://metadata.google.internal/r.git", "http://metadata.example:8080/r.git"):
        if url.startswith("http://") and not local:
            continue  # http itself is refused outside the local stage
        with pytest.raises(BadRequest) as refused:
            parse_deploy_request({"repo_url": url}, local=local, resolve=lambda _h: [address])
        assert refused.value.field == "repo_url"


def test_the_local_stage_refuses_public_hosts_and_names_that_also_resolve_elsewhere():
    with pytest.raises(BadRequest, match="loopback"):
        check_repo_url("https://example.com/r.git", local=True, resolve=public)
    with pytest.raises(BadRequest, match="loopback"):
        check_repo_url("http://mixed.example/r.git", local=True,
                       resolve=lambda _h: ["127.0.0.1", "169.254.169.254"])


def test_literal_metadata_addresses_are_refused_without_any_lookup():
    """The real resolver: a literal address is its own answer."""
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
                "http://100.100.100.200/latest/meta-data/"):
        with pytest.raises(BadRequest):
            check_repo_url(url, local=True)


@pytest.mark.parametrize("host, converted", [
    ("bücher.example", "xn--bcher-kva.example"),
    ("faß.de", "xn--fa-hia.de"),             # IDNA 2008 keeps ß; IDNA 2003 would say fass.de
    ("ＥＸＡＭＰＬＥ．com", "example.com"),  # UTS #46 maps fullwidth letters and dots
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("Example.COM.", "example.com"),
])
def test_hosts_are_checked_as_the_ascii_name_curl_would_connect_to(host, converted):
    """Measured with curl 7.88.1 / libidn2 2.3.3 under LC_ALL=C.UTF-8: the Host header curl sent
    for each of these names is the converted one here."""
    looked_up = []
    url = check_repo_url(f"https://{host}/r.git", local=False,
                         resolve=lambda h: looked_up.append(h) or ["93.184.216.34"])
    assert url == f"https://{converted}/r.git"
    assert looked_up == [converted]


@pytest.mark.parametrize("host", ["\u200d.example", "ex%61mple.com", "a..b.example", "-a.example",
                                  "xn--a.example\u0301"])
def test_a_host_that_does_not_convert_is_a_400(host):
    with pytest.raises(BadRequest) as refused:
        parse_deploy_request({"repo_url": f"https://{host}/r.git"}, local=False, resolve=public)
    assert refused.value.field == "repo_url"


def test_an_idn_host_is_cloned_from_the_address_that_was_checked(tmp_path):
    """Validation looks the converted name up and pins it; git is given the converted URL, so
    the server at the checked address sees the request, for the converted name."""
    import socket
    import threading

    from chalicelib.errors import Unprocessable
    from chalicelib.pipeline.clone import CloneLimits, clone
    from chalicelib.pipeline.validation import repo_pin
    seen: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer_404():
            connection, _ = listener.accept()
            with connection:
                seen.append(connection.recv(4096))
                connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        server = threading.Thread(target=answer_404, daemon=True)
        server.start()
        looked_up = []

        def resolve(name):
            looked_up.append(name)
            return ["127.0.0.1"]
        url = parse_deploy_request({"repo_url": f"http://bücher.localhost:{port}/r.git"}, local=True,
                                   resolve=resolve).repo_url
        pin = repo_pin(url, local=True, resolve=resolve)
        with pytest.raises(Unprocessable):
            clone(url, None, tmp_path / "c", CloneLimits(timeout=30, max_files=10, max_bytes=10_000), pin)
        server.join(10)
    assert set(looked_up) == {"xn--bcher-kva.localhost"}
    assert seen, "git never reached the checked address"
    assert f"Host: xn--bcher-kva.localhost:{port}\r\n".encode() in seen[0]
