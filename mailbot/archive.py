"""Judge a ZIP archive: its central directory first, then every entry inflated as a stream.

The support page allows "exactly one ZIP", so a ZIP is the one container a sender can hide
anything in. The central directory is read first: a zip bomb that declares its size is
refused without inflating a byte. But the directory can lie: a 4.7 KB mail holding a ZIP in
a ZIP that declared small sizes grew the daemon by 8 GB (issue 10; zipfile's read() asks
zlib for up to 2 GB at once). So every entry is then inflated in 64 KB steps, and what is
*really* produced counts against one byte budget (`zip_max_total_uncompressed`) shared with
every nested archive; an entry that yields more than it declared is refused as a lie.

Entries are typed by content like any attachment: libmagic reads the head of each entry (a
polyglot is what its first bytes say), and executables, scripts, shortcuts and HTML are
refused. Inside an archive the name matters as well: extracting keeps it, and Windows runs a
`.js` or `.lnk` by its extension whatever the bytes are, so those extensions are refused too.
"""

from __future__ import annotations

import bz2
import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from mailbot.parse import MAGIC_SAMPLE, detect_type

_ZIP_MAGIC = b"PK\x03\x04"
_ENCRYPTED_FLAG = 0x1
_STEP = 64 * 1024  # most bytes one inflate step may produce
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (versions, flags, sizes...), name and extra length
# A text log may well compress 200:1; below this size no ratio can hurt, and the total limit
# bounds many small entries together.
_RATIO_FLOOR = 1024 * 1024
# Everything zipfile raises for a damaged or unsupported archive or entry.
_BROKEN = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, zlib.error,
           ValueError, RuntimeError, struct.error)
# What libmagic calls programs, scripts, shortcuts and web pages.
DANGEROUS_TYPES = frozenset({
    "application/x-dosexec", "application/x-msdownload", "application/vnd.microsoft.portable-executable",
    "application/x-executable", "application/x-pie-executable", "application/x-sharedlib",
    "application/x-mach-binary", "application/x-msi", "application/x-ms-shortcut", "application/javascript",
    "text/javascript", "text/x-shellscript", "application/x-shellscript", "text/x-msdos-batch", "application/x-bat",
    "text/html", "application/xhtml+xml", "application/hta",
})
# Extensions Windows opens as programs, scripts, shortcuts or web pages on a double-click.
DANGEROUS_EXTENSIONS = frozenset({
    ".exe", ".com", ".scr", ".pif", ".cpl", ".dll", ".msi", ".msp", ".bat", ".cmd", ".ps1", ".psm1", ".vbs",
    ".vbe", ".js", ".jse", ".wsf", ".wsh", ".hta", ".lnk", ".url", ".reg", ".jar", ".html", ".htm", ".xhtml",
    ".svg", ".iso", ".img", ".vhd",
})


@dataclass(frozen=True)
class ZipLimits:
    """What one archive may hold; nested archives are checked with the same limits."""

    max_entries: int
    max_total_uncompressed: int
    max_ratio: float
    max_nesting: int


@dataclass
class _Budget:
    """Bytes that may still really be inflated, across the archive and everything nested in it."""

    left: int
    spent: int = field(default=0)


class _Refused(Exception):
    """An entry's content broke a limit while being inflated."""


def inspect_zip(data: bytes, limits: ZipLimits) -> str | None:
    """None for an acceptable archive, else the first problem found, naming the entry's path."""
    problem = _inspect(data, limits, 0, _Budget(limits.max_total_uncompressed))
    if problem is None:
        return None
    what, path = problem
    return f"{what}: {path}" if path else what


# A problem is (what is wrong, path of the entry inside the archive or "" for the whole archive).
_Problem = tuple[str, str]


def _inspect(data: bytes, limits: ZipLimits, depth: int, budget: _Budget) -> _Problem | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
        problem = _directory_problem(entries, limits)
        for entry in entries if problem is None else ():
            problem = _entry_problem(data, entry, limits, depth, budget)
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
        if PurePosixPath(entry.filename.replace("\\", "/").lower()).suffix in DANGEROUS_EXTENSIONS:
            return "file type not allowed in a ZIP", entry.filename
    return None


def _escapes(name: str) -> bool:
    """An entry name that would land outside the extraction folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def _compressed(data: bytes, entry: zipfile.ZipInfo) -> bytes:
    """The entry's compressed bytes, located through its local header."""
    signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(data, entry.header_offset)
    if signature != _ZIP_MAGIC:
        raise zipfile.BadZipFile("bad local file header")
    start = entry.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    return data[start:start + entry.compress_size]


def _inflate(compressed: bytes, method: int) -> Iterator[bytes]:
    """The entry's content in steps of at most _STEP bytes, whatever the archive declares."""
    if method == zipfile.ZIP_STORED:
        for start in range(0, len(compressed), _STEP):
            yield compressed[start:start + _STEP]
    elif method == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        for start in range(0, len(compressed), _STEP):
            pending = compressed[start:start + _STEP]
            while pending and not inflater.eof:
                yield inflater.decompress(pending, _STEP)
                pending = inflater.unconsumed_tail
    elif method == zipfile.ZIP_BZIP2:
        unbzip = bz2.BZ2Decompressor()
        for start in range(0, len(compressed), _STEP):
            chunk = compressed[start:start + _STEP]
            while not unbzip.eof and (chunk or not unbzip.needs_input):
                yield unbzip.decompress(chunk, _STEP)
                chunk = b""
    else:
        raise _Refused(f"compression method {method} not supported")


def _read(data: bytes, entry: zipfile.ZipInfo, limits: ZipLimits, budget: _Budget) -> Iterator[bytes]:
    """Inflate one entry, charging the shared budget and refusing lies and bombs as they show."""
    compressed = _compressed(data, entry)
    produced = 0
    for chunk in _inflate(compressed, entry.compress_type):
        produced += len(chunk)
        budget.left -= len(chunk)
        budget.spent += len(chunk)
        if budget.left < 0:
            raise _Refused(f"inflates to more than {limits.max_total_uncompressed} bytes")
        if produced > entry.file_size:
            raise _Refused(f"inflates to more than the {entry.file_size} bytes it declares")
        if produced > _RATIO_FLOOR and produced / max(len(compressed), 1) > limits.max_ratio:
            raise _Refused(f"zip bomb, compression ratio above {limits.max_ratio:g}")
        yield chunk


def _entry_problem(data: bytes, entry: zipfile.ZipInfo, limits: ZipLimits, depth: int,
                   budget: _Budget) -> _Problem | None:
    if entry.is_dir():
        return None
    chunks = _read(data, entry, limits, budget)
    try:
        head = b""
        for chunk in chunks:
            head += chunk
            if len(head) >= MAGIC_SAMPLE:
                break
        kind = detect_type(head)
        if kind in DANGEROUS_TYPES:
            return f"{kind} not allowed in a ZIP", entry.filename
        if not head.startswith(_ZIP_MAGIC):
            for _ in chunks:  # the rest is inflated only to count it
                pass
            return None
        if depth >= limits.max_nesting:
            return f"ZIP nested deeper than {limits.max_nesting}", entry.filename
        inner = head + b"".join(chunks)  # bounded: the budget stops it
    except _Refused as exc:
        return str(exc), entry.filename
    problem = _inspect(inner, limits, depth + 1, budget)
    if problem is None:
        return None
    what, path = problem
    return what, f"{entry.filename}/{path}" if path else entry.filename
