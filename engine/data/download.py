"""Fetching data files: checksum-verified, atomic, with progress callbacks."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

ProgressFn = Callable[[int, int], None]


class DownloadError(RuntimeError):
    """A download that failed or did not match its checksum; the message is one sentence."""


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str | None, progress: ProgressFn | None = None,
             timeout: float = 30.0) -> Path:
    """Download url to dest; the file appears only once complete and verified."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(f"Could not download {url} ({reason}); check the network connection "
                                    f"or put the file in {dest.parent} by hand.") from None
            with response:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        if md5 and digest.hexdigest() != md5:
            raise DownloadError(f"The file downloaded from {url} does not match its checksum "
                                f"(got {digest.hexdigest()}, expected {md5}); it was discarded, try again.")
        os.replace(tmp_name, dest)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return dest
