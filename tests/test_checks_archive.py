"""ZIP inspection: every limit refuses just above it and passes at it, and nothing is expanded."""

from __future__ import annotations

import io
import stat
import zipfile

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
