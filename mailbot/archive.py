"""Judge a ZIP archive from its central directory, without ever expanding it to disk.

The support page allows "exactly one ZIP", so a ZIP is the one container a sender can hide
anything in. Sizes, counts and flags come from the central directory, which costs no
decompression: a zip bomb is refused on what it declares. Only an entry that is itself a
ZIP (found by its first bytes, not its name) is read, in memory, and only once its declared
size has passed the limits; zipfile never yields more than the declared size.
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

_ZIP_MAGIC = b"PK\x03\x04"
_ENCRYPTED_FLAG = 0x1
# A text log may well compress 200:1; below this size no ratio can hurt, and the total limit
# bounds many small entries together.
_RATIO_FLOOR = 1024 * 1024
# Everything zipfile raises for a damaged or unsupported archive or entry.
_BROKEN = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, zlib.error,
           ValueError, RuntimeError)


@dataclass(frozen=True)
class ZipLimits:
    """What one archive may declare; nested archives are checked with the same limits."""

    max_entries: int
    max_total_uncompressed: int
    max_ratio: float
    max_nesting: int


def inspect_zip(data: bytes, limits: ZipLimits) -> str | None:
    """None for an acceptable archive, else the first problem found, naming the entry's path."""
    problem = _inspect(data, limits, depth=0)
    if problem is None:
        return None
    what, path = problem
    return f"{what}: {path}" if path else what


# A problem is (what is wrong, path of the entry inside the archive or "" for the whole archive).
_Problem = tuple[str, str]


def _inspect(data: bytes, limits: ZipLimits, depth: int) -> _Problem | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            problem = _directory_problem(entries, limits)
            for entry in entries if problem is None else ():
                problem = _nested_problem(archive, entry, limits, depth)
                if problem is not None:
                    break
    except _BROKEN as exc:
        return f"not a valid ZIP archive ({type(exc).__name__})", ""
    return problem


def _directory_problem(entries: list[zipfile.ZipInfo], limits: ZipLimits) -> _Problem | None:
    """Everything the central directory alone can tell: count, sizes, ratio, flags, names."""
    if len(entries) > limits.max_entries:
        return f"{len(entries)} entries > {limits.max_entries}", ""
    total = sum(entry.file_size for entry in entries)
    if total > limits.max_total_uncompressed:
        return f"uncompressed size {total} > {limits.max_total_uncompressed}", ""
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.flag_bits & _ENCRYPTED_FLAG:
            return "encrypted entry", entry.filename
        if _escapes(entry.filename):
            return "path traversal", entry.filename
        if stat.S_ISLNK(entry.external_attr >> 16):
            return "symbolic link", entry.filename
        if entry.file_size > _RATIO_FLOOR and ratio > limits.max_ratio:
            return f"zip bomb, compression ratio {ratio:.0f} > {limits.max_ratio:g}", entry.filename
    return None


def _escapes(name: str) -> bool:
    """An entry name that would land outside the extraction folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def _nested_problem(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limits: ZipLimits,
                    depth: int) -> _Problem | None:
    if entry.is_dir() or entry.file_size < len(_ZIP_MAGIC):
        return None
    with archive.open(entry) as handle:
        if handle.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            return None
        if depth >= limits.max_nesting:
            return f"ZIP nested deeper than {limits.max_nesting}", entry.filename
        inner = _ZIP_MAGIC + handle.read()
    problem = _inspect(inner, limits, depth + 1)
    if problem is None:
        return None
    what, path = problem
    return what, f"{entry.filename}/{path}" if path else entry.filename
