"""Unpacking a tar that percel made (a node_modules cache, a clone's `.git`) into a tree.

The archives come from our own bucket, but a bucket can be written by others: every member is
checked before anything is written, and Python's "data" filter (PEP 706) stays as a second line
of defence.
"""
from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path


def extract_checked(data: bytes, parent: Path, top: str,
                    check: Callable[[tarfile.TarInfo], None]) -> bool:
    """Put the archive's `top` directory at `parent/top`; False when the archive has none.

    `check` raises for a member it refuses, before anything is written. The archive is
    extracted into a scratch directory beside the target and moved into place, so a refused
    or truncated archive leaves nothing partial behind. Raises tarfile.TarError too.
    """
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        members = archive.getmembers()
        for info in members:
            check(info)
        scratch = Path(tempfile.mkdtemp(prefix=".percel-unpack-", dir=parent))
        try:
            archive.extractall(scratch, members=members, filter="data")
            if not (scratch / top).is_dir():
                return False
            (scratch / top).rename(Path(parent) / top)
            return True
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
