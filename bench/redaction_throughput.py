"""Redaction throughput against a plain ``bytes.replace`` pass over the same log data.

Run on demand (not a test)::

    .venv/bin/python bench/redaction_throughput.py [--size-mb 100] [--repeat 5] [--chunk-kib 64]

Generates realistic log data with 20 secrets (16-40 characters unless ``--shortest`` and
``--longest`` say otherwise; tokens and punctuation-heavy passwords) planted raw, base64-encoded
at every alignment, percent-encoded, JSON-escaped, shell-quoted and hex-encoded. It then times,
best of N:

* the redactor streaming the data in fixed-size chunks (every form of every secret masked), and
* a baseline that only replaces each of the 20 raw secrets with ``bytes.replace`` on the whole
  buffer,

and prints both times and their ratio. The target is a ratio of at most 3.0.

``--compare-designs`` also times the rejected designs on the same patterns: one ``bytes.find``
pass per pattern, and a single regex alternating over all patterns (on a 10 MB slice, scaled).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import shlex
import string
import sys
import time
from collections.abc import Callable
from urllib.parse import quote, quote_plus

from async_pipeline.redaction import MASK, Redactor

TARGET_RATIO = 3.0
SECRET_COUNT = 20
# Roughly one secret-bearing line per 20 KiB: secrets are rare in real logs, but not absent.
PLANTED_PER_MB = 50

_WORDS = (
    "request completed started worker cache hit miss user id session upstream retry queued "
    "build step compile test passed failed artifact upload download connection pool timeout "
    "config loaded resolving dependency install package version checksum verify lock acquired"
).split()
_LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR")
_PATHS = ("/api/v1/items", "/healthz", "/api/v1/users/42", "/static/app.js", "/login")


def _make_secrets(rng: random.Random, shortest: int, longest: int) -> list[str]:
    token_chars = string.ascii_letters + string.digits + "_-"
    password_chars = string.ascii_letters + string.digits + "!@#$%^&*()+=/ '\"<>?"
    made = []
    for number in range(SECRET_COUNT):
        length = rng.randint(shortest, longest)
        chars = token_chars if number % 2 else password_chars
        made.append("".join(rng.choice(chars) for _ in range(length)))
    return made


def _noise_line(rng: random.Random, number: int) -> bytes:
    clock = f"{number % 24:02d}:{number % 60:02d}:{(number * 7) % 60:02d}.{number % 1000:03d}"
    stamp = f"2024-05-01T{clock}Z"
    kind = number % 5
    if kind == 0:
        event = " ".join(rng.sample(_WORDS, 4))
        record = {"ts": stamp, "level": rng.choice(_LEVELS), "event": event}
        return json.dumps({**record, "duration_ms": rng.randint(1, 5000)}).encode() + b"\n"
    if kind == 1:
        path = rng.choice(_PATHS)
        return (
            f"10.0.{number % 256}.{(number * 13) % 256} - - [{stamp}] "
            f'"GET {path}?page={number % 97} HTTP/1.1" 200 {rng.randint(100, 99999)}\n'
        ).encode()
    if kind == 2:
        blob = base64.b64encode(rng.randbytes(rng.randint(24, 90))).decode()
        return f"{stamp} DEBUG payload={blob}\n".encode()
    if kind == 3:
        digest = rng.randbytes(32).hex()
        return f"{stamp} INFO artifact sha256={digest} size={rng.randint(1, 10**9)}\n".encode()
    words = " ".join(rng.choices(_WORDS, k=rng.randint(6, 16)))
    return f"{stamp} {rng.choice(_LEVELS)} [worker-{number % 8}] {words}\n".encode()


def _planted_line(rng: random.Random, secret: str) -> bytes:
    raw = secret.encode()
    kind = rng.randrange(9)
    if kind == 0:
        return b"Authorization: Bearer " + raw + b"\n"
    if kind == 1:
        user = "x" * rng.randint(1, 9)  # varies the base64 alignment of the secret
        return b"Authorization: Basic " + base64.b64encode(f"{user}:{secret}".encode()) + b"\n"
    if kind == 2:
        blob = rng.randbytes(rng.randint(0, 5)) + raw + rng.randbytes(rng.randint(0, 5))
        return b"config=" + base64.urlsafe_b64encode(blob) + b"\n"
    if kind == 3:
        return f"GET /callback?token={quote(secret, safe='')}&state=ok\n".encode()
    if kind == 4:
        return f"POST body: password={quote_plus(secret)}&remember=1\n".encode()
    if kind == 5:
        return (json.dumps({"event": "login", "password": secret}) + "\n").encode()
    if kind == 6:
        return f"+ deploy --token {shlex.quote(secret)} --region eu\n".encode()
    if kind == 7:
        escaped = "".join("\\" + c if c in '\\"$`' else c for c in secret)
        return f'+ sh -c "export TOKEN=\\"{escaped}\\""\n'.encode()
    return f"dump: {raw.hex()}\n".encode()


def make_log(
    size_mb: int, shortest: int = 16, longest: int = 40, seed: int = 7
) -> tuple[bytes, list[str], int]:
    """Return (log bytes, the secrets, how many secret-bearing lines were planted)."""
    rng = random.Random(seed)
    made = _make_secrets(rng, shortest, longest)
    pool = [_noise_line(rng, number) for number in range(40_000)]
    average = sum(map(len, pool)) / len(pool)
    lines = rng.choices(pool, k=int(size_mb * 1_000_000 / average))
    planted = size_mb * PLANTED_PER_MB
    for _ in range(planted):
        lines[rng.randrange(len(lines))] = _planted_line(rng, rng.choice(made))
    return b"".join(lines), made, planted


def best_of(repeat: int, work: Callable[[], bytes]) -> tuple[float, bytes]:
    """Return the fastest wall time of ``repeat`` runs and the last result."""
    times = []
    result = b""
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when the ratio misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunk-kib", type=int, default=64)
    parser.add_argument("--compare-designs", action="store_true")
    parser.add_argument("--shortest", type=int, default=16, help="shortest secret length")
    parser.add_argument("--longest", type=int, default=40, help="longest secret length")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    data, made, planted = make_log(args.size_mb, args.shortest, args.longest)
    print(
        f"data: {len(data) / 1e6:.1f} MB, {planted} secret-bearing lines planted, "
        f"generated in {time.perf_counter() - started:.1f}s"
    )

    started = time.perf_counter()
    redactor = Redactor({f"SECRET_{number}": value for number, value in enumerate(made)})
    print(f"redactor: {redactor!r}, built in {(time.perf_counter() - started) * 1000:.1f} ms")
    chunk = args.chunk_kib * 1024

    def streamed() -> bytes:
        stream = redactor.stream()
        feed = stream.feed
        out = [feed(data[at : at + chunk]) for at in range(0, len(data), chunk)]
        out.append(stream.flush())
        return b"".join(out)

    def replaced() -> bytes:
        result = data
        for secret in raw_secrets:
            result = result.replace(secret, MASK)
        return result

    def replaced_per_chunk() -> bytes:
        # Same memory pattern as the stream (no 100 MB copy per secret); misses split secrets.
        out = []
        for at in range(0, len(data), chunk):
            piece = data[at : at + chunk]
            for secret in raw_secrets:
                piece = piece.replace(secret, MASK)
            out.append(piece)
        return b"".join(out)

    raw_secrets = [secret.encode() for secret in made]
    redact_time, redacted = best_of(args.repeat, streamed)
    replace_time, _ = best_of(args.repeat, replaced)
    chunked_time, _ = best_of(args.repeat, replaced_per_chunk)

    leaked = [number for number, secret in enumerate(made) if secret.encode() in redacted]
    if leaked or redacted != redactor.redact(data):
        print(f"FAIL: raw secrets left {leaked} or streamed output differs from whole-buffer")
        return 1
    ratio = redact_time / replace_time
    rate = len(data) / redact_time / 1e6
    print(f"masks written: {redacted.count(MASK)}")
    print(f"redactor (streamed, {args.chunk_kib} KiB chunks): {redact_time:.3f}s ({rate:.0f} MB/s)")
    print(f"bytes.replace x{len(made)} (whole buffer):       {replace_time:.3f}s")
    print(f"bytes.replace x{len(made)} (per chunk):          {chunked_time:.3f}s")
    print(f"ratio: {ratio:.2f} (target <= {TARGET_RATIO})")
    print(f"ratio against the per-chunk replace: {redact_time / chunked_time:.2f}")
    if args.compare_designs:
        compare_designs(data, made, chunk)
    return 0 if ratio <= TARGET_RATIO else 1


def compare_designs(data: bytes, made: list[str], chunk: int) -> None:
    """Time the designs the redactor does not use, over the same patterns and data."""
    # Reaches into private modules on purpose: this measures alternatives, not the API.
    from async_pipeline.redaction import _matcher
    from async_pipeline.redaction._forms import encoded_forms, secret_pieces

    patterns = sorted(
        {
            form
            for secret in made
            for piece in secret_pieces(secret.encode(), 4)
            for form in encoded_forms(piece).values()
        }
    )

    def scan(finder: _matcher.SpanFinder) -> bytes:
        for at in range(0, len(data), chunk):
            finder.spans(data[at : at + chunk])
        return b""

    with_prefilter = _matcher.SpanFinder(patterns)
    saved = _matcher.PREFILTER_MIN_PATTERNS
    _matcher.PREFILTER_MIN_PATTERNS = len(patterns) + 1
    try:
        find_only = _matcher.SpanFinder(patterns)
    finally:
        _matcher.PREFILTER_MIN_PATTERNS = saved
    print(f"design comparison, {len(patterns)} patterns, span finding only:")
    print(f"  word prefilter + find:  {best_of(3, lambda: scan(with_prefilter))[0]:.3f}s")
    print(f"  one find per pattern:   {best_of(2, lambda: scan(find_only))[0]:.3f}s")
    alternation = re.compile(b"|".join(re.escape(p) for p in sorted(patterns, key=len)[::-1]))
    sample = data[: 10 * 1024 * 1024]
    started = time.perf_counter()
    for _ in alternation.finditer(sample):
        pass
    scaled = (time.perf_counter() - started) * len(data) / len(sample)
    print(f"  regex alternation:      {scaled:.3f}s (scaled from 10 MiB)")


if __name__ == "__main__":
    sys.exit(main())
