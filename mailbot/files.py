"""Attachment files on disk, named by their SHA-256, never by the sender's file name.

A name from a mail can hold `../`, NULs or a device name; a content hash cannot, and the same
file sent twice is stored once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class FileStore:
    def __init__(self, root: str | os.PathLike[str], *, dry_run: bool = False) -> None:
        self.root = Path(root)
        self.dry_run = dry_run

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def put(self, payload: bytes) -> str:
        """Store durably (fsync before rename) and return the hex digest."""
        digest = hashlib.sha256(payload).hexdigest()
        target = self.path_for(digest)
        if self.dry_run or target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return digest
