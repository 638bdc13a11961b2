"""A seeded mutator of real-world mail, for the fuzz test and bench/fuzz.py.

Each mutation is one of the ways mail breaks in the field or is broken on purpose: flipped
and inserted bytes, cut and doubled stretches, lost or repeated MIME delimiters, and header
lines from issue 10's reports (bad encoded words, nested comments, NULs, many parameters).
The same seed gives the same mails, so a failure can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

NASTY_HEADERS = (
    b"Subject: =?utf-8?B?QUJDR?= =?gb2312?Q?=B4=F2=FF?= =?x-unknown?Q?a?=",
    b"From: " + b"(" * 300 + b"x" + b")" * 300 + b" <kunde@customer.test>",
    b"Message-ID: <nul\x00id@customer.test>",
    b"Content-Type: multipart/mixed; boundary=\"\"",
    b"Content-Type: text/plain; charset=\"x-no-such-charset\"",
    b"Content-Transfer-Encoding: base64",
    b"Content-Disposition: attachment; filename*0*=utf-8''%FF%FE; filename*1=\"\x00.exe\"",
    b"Cc: " + b", ".join(b"p%d@customer.test" % n for n in range(300)),
    b"Content-Type: text/html; " + b"; ".join(b"a%d=1" % n for n in range(90)),
    b"Subject: \xb4\xf2\xd3\xa1\xbb\xfa",
    b"To: \"unclosed <service@example.com>",
    b"Date: Mon, 99 Foo 20261 25:61:61 +9999",
)


def candidates(corpus: Path = CORPUS) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.is_file() and p.suffix not in (".tsv", ".md"))


def _span(rng: random.Random, data: bytes) -> tuple[int, int]:
    start = rng.randrange(len(data) + 1)
    return start, min(len(data), start + rng.randrange(1, 4096))


def _flip(rng: random.Random, data: bytes) -> bytes:
    mutable = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        if mutable:
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
    return bytes(mutable)


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.randint(1, 200)) + data[at:]


def _cut(rng: random.Random, data: bytes) -> bytes:
    start, end = _span(rng, data)
    return data[:start] + data[end:]


def _double(rng: random.Random, data: bytes) -> bytes:
    start, end = _span(rng, data)
    return data[:end] + data[start:end] * rng.randint(1, 50) + data[end:]


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _delimiters(rng: random.Random, data: bytes) -> bytes:
    """Drop closing delimiters, or repeat one delimiter line many times."""
    lines = data.split(b"\n")
    delimiters = [i for i, line in enumerate(lines) if line.startswith(b"--")]
    if not delimiters:
        return data
    at = rng.choice(delimiters)
    if rng.random() < 0.5:
        lines[at] = lines[at].rstrip(b"\r-") + b"\r"
    else:
        lines[at:at + 1] = [lines[at]] * rng.randint(2, 500)
    return b"\n".join(lines)


def _header(rng: random.Random, data: bytes) -> bytes:
    at = data.find(b"\n") + 1
    return data[:at] + rng.choice(NASTY_HEADERS) + b"\r\n" + data[at:]


MUTATORS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    _flip, _insert, _cut, _double, _truncate, _delimiters, _header,
)


def mutated(files: Sequence[Path], count: int, seed: int = 10) -> Iterator[tuple[str, bytes]]:
    """`count` mails, each a corpus file with one to three mutations: (label, bytes)."""
    rng = random.Random(seed)
    contents = [path.read_bytes() for path in files]
    for number in range(count):
        index = rng.randrange(len(files))
        data = contents[index]
        steps = [rng.choice(MUTATORS) for _ in range(rng.randint(1, 3))]
        for step in steps:
            data = step(rng, data)
        yield f"{number}:{files[index].name}:{'+'.join(s.__name__.strip('_') for s in steps)}", data
