"""The pure rules of packs (storage/packs.py): which files go in which pack, and whether a
pack's bytes are what its layout claims."""
import hashlib

from chalicelib.storage import packs


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_small_files_are_packed_in_their_order_and_large_ones_left_alone():
    small = {f"s{i}": 1_000 for i in range(5)}
    sizes = {"big": packs.PACK_FILE_BYTES + 1, **small}
    assert packs.plan(sizes) == [list(small)]


def test_a_pack_is_cut_before_it_would_pass_its_limit():
    size = packs.PACK_FILE_BYTES
    sizes = {f"f{i}": size for i in range(packs.PACK_BYTES // size + 1)}
    planned = packs.plan(sizes)
    assert [len(pack) for pack in planned] == [packs.PACK_BYTES // size, 1]
    assert [h for pack in planned for h in pack] == list(sizes)


def test_nothing_to_pack_is_no_pack():
    assert packs.plan({}) == [] and packs.plan({"big": packs.PACK_FILE_BYTES + 1}) == []


def test_an_honest_pack_has_no_lying_segment_and_its_offsets_follow_the_sizes():
    files = [b"<h1>a</h1>", b"", b"body{}"]
    segments, sizes = [sha(f) for f in files], {sha(f): len(f) for f in files}
    assert packs.offsets(segments, sizes) == [0, 10, 10]
    assert packs.lying(b"".join(files), segments, sizes) == []


def test_a_segment_whose_bytes_differ_is_named_and_a_wrong_length_names_all():
    files = [b"<h1>a</h1>", b"body{}"]
    segments, sizes = [sha(f) for f in files], {sha(f): len(f) for f in files}
    assert packs.lying(b"<h1>a</h1>BODY{}", segments, sizes) == [sha(b"body{}")]
    # The right files in another order: both segments lie.
    assert packs.lying(b"body{}<h1>a</h1>", segments, sizes) == segments
    assert packs.lying(b"<h1>a</h1>body{}!", segments, sizes) == segments
