"""ZIP inspection: every limit refuses just above it and passes at it, and nothing is expanded."""

from __future__ import annotations

import io
import stat
import struct
import tracemalloc
import zipfile
import zlib

import pytest

from mailbot.archive import ZipLimits, inspect_zip

LIMITS = ZipLimits(max_entries=3, max_total_uncompressed=4 << 20, max_ratio=100, max_nesting=1)


def make_zip(*entries: tuple[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_small_archive_passes() -> None:
    assert inspect_zip(make_zip(("a.txt", b"hallo"), ("dir/b.png", b"\x89PNG")), LIMITS) is None


def test_entry_count() -> None:
    assert inspect_zip(make_zip(*((f"{i}.txt", b"x") for i in range(3))), LIMITS) is None
    assert inspect_zip(make_zip(*((f"{i}.txt", b"x") for i in range(4))), LIMITS) == "4 entries > 3"


def test_total_uncompressed_size_is_read_from_the_directory() -> None:
    data = make_zip(("a.bin", bytes(range(256)) * 8192), ("b.bin", bytes(range(256)) * 8193))
    assert inspect_zip(data, LIMITS) == f"uncompressed size {(4 << 20) + 256} > {4 << 20}"


def test_high_ratio_of_a_large_entry_is_a_bomb_but_a_small_log_is_not() -> None:
    assert inspect_zip(make_zip(("log.txt", b"\x00" * (1 << 20))), LIMITS) is None
    bomb = inspect_zip(make_zip(("zeros.bin", b"\x00" * (2 << 20))), LIMITS)
    assert bomb is not None and bomb.startswith("zip bomb, compression ratio") and bomb.endswith(": zeros.bin")


def test_bomb_declaring_a_huge_size_is_refused_without_expanding() -> None:
    # A directory that claims 1 TiB: rewrite the declared size of a tiny entry. Expanding it
    # would take forever; refusing it takes the time to read the directory.
    data = bytearray(make_zip(("huge.bin", b"\x00" * 1000)))
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = (0xFFFFFFFF).to_bytes(4, "little")
    assert inspect_zip(bytes(data), LIMITS) == f"uncompressed size {0xFFFFFFFF} > {4 << 20}"


@pytest.mark.parametrize(
    "name",
    ["../evil.sh", "a/../../evil.sh", "/etc/cron.d/evil", "..\\..\\evil.bat", "C:\\Windows\\evil.dll"],
)
def test_path_traversal(name: str) -> None:
    assert inspect_zip(make_zip((name, b"x")), LIMITS) == f"path traversal: {name}"


def test_dots_inside_a_name_are_fine() -> None:
    assert inspect_zip(make_zip(("logs..old/a..b.txt", b"x")), LIMITS) is None


def test_symbolic_link() -> None:
    assert inspect_zip(make_zip(symlink="passwd"), LIMITS) == "symbolic link: passwd"


def test_encrypted_entry() -> None:
    data = bytearray(make_zip(("geheim.txt", b"x")))
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x1
    assert inspect_zip(bytes(data), LIMITS) == "encrypted entry: geheim.txt"


def test_nesting_is_found_by_content_not_name() -> None:
    inner = make_zip(("a.txt", b"x"))
    assert inspect_zip(make_zip(("daten.bin", inner)), LIMITS) is None
    assert inspect_zip(make_zip(("a.zip", make_zip(("b.dat", inner)))), LIMITS) == (
        "ZIP nested deeper than 1: a.zip/b.dat")


def test_problem_inside_a_nested_archive_names_its_path() -> None:
    inner = make_zip(("../evil", b"x"))
    assert inspect_zip(make_zip(("innen.zip", inner)), LIMITS) == "path traversal: innen.zip/../evil"


@pytest.mark.parametrize("data", [b"PK\x03\x04 broken", b"", b"not a zip at all"])
def test_broken_archive(data: bytes) -> None:
    assert inspect_zip(data, LIMITS) == "not a valid ZIP archive (BadZipFile)"


def test_broken_nested_archive() -> None:
    assert inspect_zip(make_zip(("x.zip", b"PK\x03\x04 truncated")), LIMITS) == (
        "not a valid ZIP archive (BadZipFile): x.zip")


def lying_zip(name: str, size: int, declared: int, head: bytes = b"") -> bytes:
    """A one-entry ZIP whose headers declare `declared` bytes for `head` and `size` zero bytes."""
    # One MiB of zeros deflated and fully flushed (byte-aligned, no shared dictionary) is a block
    # sequence that can be repeated; b"\x03\x00" is an empty final block that ends the stream.
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)
    zeros = packer.compress(bytes(1 << 20)) + packer.flush(zlib.Z_FULL_FLUSH)
    deflated = start + zeros * (size >> 20) + b"\x03\x00"
    encoded = name.encode()
    # The checksum is right for the declared bytes, so a reader that trusts the size finds no fault.
    crc = zlib.crc32(head + bytes(declared - len(head)))
    sizes = struct.pack("<III", crc, len(deflated), declared)  # crc, compressed, uncompressed
    local = struct.pack("<4sHHHHH", b"PK\x03\x04", 20, 0, 8, 0, 0) + sizes + struct.pack("<HH", len(encoded), 0)
    central = (struct.pack("<4sHHHHHH", b"PK\x01\x02", 20, 20, 0, 8, 0, 0) + sizes
               + struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, 0) + encoded)
    body = local + encoded + deflated
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
    return body + central + end


def lying_nested_zip() -> bytes:
    """A ZIP in a ZIP whose inner entry says 1,000 bytes and inflates to 512 MiB (a few KB in
    all). It starts like a ZIP, so an inspector that looks for nested archives reads all of it."""
    return make_zip(("inner.zip", lying_zip("zeros.zip", 512 << 20, 1000, head=b"PK\x03\x04")))


def test_a_lying_nested_zip_is_refused_after_inflating_little() -> None:
    outer = lying_nested_zip()
    tracemalloc.start()
    try:
        problem = inspect_zip(outer, ZipLimits(1000, 200 << 20, 100, 2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problem == "inflates to more than the 1000 bytes it declares: inner.zip/zeros.zip"
    assert len(outer) < 10_000 and peak < 10 << 20


def test_an_honest_large_entry_is_capped_by_what_really_inflates() -> None:
    # Declares its true size, under the total: the budget counts the real bytes all the same.
    data = lying_zip("log.bin", 8 << 20, 8 << 20)
    limits = ZipLimits(10, 4 << 20, 10_000, 1)
    assert inspect_zip(data, ZipLimits(10, 16 << 20, 10_000, 1)) is None
    assert inspect_zip(data, limits) == f"uncompressed size {8 << 20} > {4 << 20}"


@pytest.mark.parametrize(("name", "data", "problem"), [
    ("tool.bin", b"MZ" + bytes(200), "application/x-dosexec not allowed in a ZIP: tool.bin"),
    ("seite.txt", b"<!DOCTYPE html><html><body>x</body></html>", "text/html not allowed in a ZIP: seite.txt"),
    ("rechnung.pdf.js", b"var x = 1;", "file type not allowed in a ZIP: rechnung.pdf.js"),
    ("Rechnung.LNK", b"L\x00\x00\x00", "file type not allowed in a ZIP: Rechnung.LNK"),
])
def test_entries_are_typed_by_content_and_by_the_name_windows_runs(name: str, data: bytes, problem: str) -> None:
    assert inspect_zip(make_zip((name, data)), LIMITS) == problem


def test_a_polyglot_is_judged_by_its_leading_type() -> None:
    jpeg_then_exe = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100) + b"MZ" + bytes(100)
    assert inspect_zip(make_zip(("foto.jpg", jpeg_then_exe)), LIMITS) is None
    exe_then_jpeg = b"MZ" + bytes(100) + b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    assert inspect_zip(make_zip(("foto.jpg", exe_then_jpeg)), LIMITS) == (
        "application/x-dosexec not allowed in a ZIP: foto.jpg")
