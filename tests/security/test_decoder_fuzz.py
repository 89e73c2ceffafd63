"""Mutation fuzz of every column decoder: CodecError or a well-formed column, never a crash.

tests/codecs already flips single bits, truncates and feeds random bytes. This
suite mutates valid chunks of every encoding the way damage and hostile files do —
runs of flipped bits, bytes set to edge values, 1/2/4/8-byte integers overwritten
with boundary numbers (lengths, counts, offsets), inserted, deleted, duplicated and
spliced ranges — and, for the zstd forms, mutates the *content* and recompresses
it, so the inner decoders (the compiled token kernels included) see the damage
instead of zstd refusing it. Each mutant goes through the public
``decode_column`` with the chunk's own row count, dtype and dim (and neighbours of
them), and token blocks also through ``decode_tokens``, ``decode_tokens_dense`` and
``decode_tokens_lists`` of both backends, which must agree. Each build of the compiled
kernels' min/max loops (``_tokens.builds()``: baseline and AVX2 on x86-64) is fuzzed.

The mutants run in a child interpreter, so a segfault is seen as one. Run this file
directly for a chosen count (``python tests/security/test_decoder_fuzz.py 1000000``);
``tests/security/asan_fuzz.sh`` runs it against an AddressSanitizer build.
"""

from __future__ import annotations

import faulthandler
import json
import os
import random
import struct
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from memora_lite.codecs import backend, decode_column, encode_column, tokens_numpy
from memora_lite.columns import Column, Ragged
from memora_lite.errors import CodecError, CorruptionError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CODECS = [backend.TokenCodec(backend.KERNELS), backend.TokenCodec(tokens_numpy)]
BUILDS = backend.KERNELS.builds() if backend.BACKEND == "cython" else ("numpy",)
EDGE_INTS = [0, 1, 2, 3, 7, 8, 40, 127, 128, 255, 256, 1023, 1024, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
             2**32, 2**40, 2**62, 2**63 - 1, 2**63, 2**64 - 1]


def _samples() -> list[tuple[str, str, bytes, str, np.dtype, int | None, Column]]:
    """(name, encoding, bytes, kind, dtype, dim, column): every encoding, raw and +zstd."""
    rng = np.random.default_rng(0)
    squad = rng.integers(1000, 30000, size=(12, 48))
    squad[:, 30:] = 0
    columns: list[tuple[str, Column, str, np.dtype, int | None]] = [
        ("int64", rng.integers(-2**40, 2**40, 40), "fixed", np.dtype(np.int64), None),
        ("int8 runs", np.repeat(np.arange(5, dtype=np.int8), 30), "fixed", np.dtype(np.int8), None),
        ("positions", rng.integers(-5, 384, 40), "fixed", np.dtype(np.int64), None),  # narrow
        ("float32", rng.standard_normal(33).astype(np.float32), "fixed", np.dtype(np.float32), None),
        ("bool", rng.integers(0, 2, 50).astype(bool), "fixed", np.dtype(bool), None),
        ("matrix", rng.standard_normal((9, 3)).astype(np.float32), "matrix", np.dtype(np.float32), 3),
        ("tokens squad", Ragged.from_matrix(squad), "tokens", np.dtype(np.int32), None),
        ("tokens mask", Ragged.from_matrix((squad > 0).astype(np.int8)), "tokens", np.dtype(np.int8), None),
        ("tokens ragged", Ragged.from_lists([[101, 7, 102, 0, 0], [], [5] * 9, [2**40, -3], [1]], np.dtype(np.int64)),
         "tokens", np.dtype(np.int64), None),
        ("tokens noise", Ragged.from_lists([rng.integers(-2**62, 2**62, 5).tolist(), [1, 2, 2]], np.dtype(np.int64)),
         "tokens", np.dtype(np.int64), None),
        ("ragged floats", Ragged.from_lists([[0.5], [], [1.0, 2.0, 3.0]] * 4, np.dtype(np.float32)), "ragged",
         np.dtype(np.float32), None),
        ("ragged bools", Ragged.from_lists([[True], [], [False, True]] * 4, np.dtype(bool)), "ragged", np.dtype(bool),
         None),
        ("strings", np.array(["hi", None, "é", "", "long " * 20] * 3, dtype=object), "strings", np.dtype(object),
         None),
        ("json", np.array([{"a": 1}, None, [1, "x"], 2.5, "s", {"n": {"d": [True]}}] * 2, dtype=object), "objects",
         np.dtype(object), None),
        ("string rows", Ragged.from_lists([["a", "b"], [], ["ü" * 5]] * 4, np.dtype(object)), "objects",
         np.dtype(object), None),
    ]
    out = []
    for name, column, kind, dtype, dim in columns:
        encoding, data = encode_column(column, kind)
        out.append((name, encoding, data, kind, dtype, dim, column))
        base = encoding.removesuffix("+zstd")
        if base == "tokens1":
            if data[5] & backend.FLAG_ZSTD:  # also the raw-body form
                raw = data[:5] + bytes([data[5] & ~backend.FLAG_ZSTD]) + data[6:40] + bytes(backend._open(data)[1])
                out.append((name + " raw body", "tokens1", raw, kind, dtype, dim, column))
        elif encoding.endswith("+zstd"):
            out.append((name + " raw", base, backend.zstd_decompress(data, None, "x"), kind, dtype, dim, column))
        else:
            out.append((name + " zstd", base + "+zstd", backend.zstd_compress(data, 3), kind, dtype, dim, column))
    return out


def mutate(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        action = rng.randrange(9)
        pos = rng.randrange(len(buf) + 1)
        if action == 0 and buf:  # a run of flipped bits
            for _ in range(rng.randint(1, 8)):
                bit = rng.randrange(8 * len(buf))
                buf[bit // 8] ^= 1 << (bit % 8)
        elif action == 1 and buf:  # bytes set to edge values
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(len(buf))] = rng.choice([0, 1, 0x7F, 0x80, 0xFE, 0xFF])
        elif action in (2, 3) and buf:  # an integer field overwritten with a boundary number
            width = rng.choice([1, 2, 4, 8])
            value = rng.choice([*EDGE_INTS, len(data), len(data) - 40, rng.randrange(1 << (8 * width))])
            at = rng.randrange(0, max(1, len(buf) - width + 1))
            at -= at % width if rng.random() < 0.7 else 0
            buf[at : at + width] = (value % (1 << (8 * width))).to_bytes(width, "little")[: len(buf) - at]
        elif action == 4:  # inserted bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif action == 5:  # a deleted range
            del buf[pos : pos + rng.randint(1, 16)]
        elif action == 6 and buf:  # a duplicated range
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randint(1, 32)]
        elif action == 7:  # cut short, or junk after the end
            if rng.random() < 0.5:
                del buf[pos:]
            else:
                buf += bytes(rng.randrange(256) for _ in range(rng.randint(1, 24)))
        else:  # spliced with another chunk
            other = rng.choice(others)
            start = rng.randrange(len(other) + 1)
            buf[pos:] = other[start : start + rng.randint(1, 64)] + buf[pos:]
    return bytes(buf)


def mutate_chunk(encoding: str, data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """Mutate a chunk; zstd forms usually have their content mutated and recompressed."""
    if encoding.endswith("+zstd") and rng.random() < 0.7:
        return backend.zstd_compress(mutate(backend.zstd_decompress(data, None, "x"), rng, others), 1)
    if encoding == "tokens1" and data[5] & backend.FLAG_ZSTD and rng.random() < 0.7:
        header = mutate(data[:40], rng, others)[:40] if rng.random() < 0.4 else data[:40]
        body = bytes(backend._open(data)[1])
        body = mutate(body, rng, others) if rng.random() < 0.8 else body
        return header.ljust(40, b"\x00") + backend.zstd_compress(body, 1)
    return mutate(data, rng, others)


def well_formed(column: Any, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> bool:
    if len(column) != rows:
        return False
    if isinstance(column, Ragged):
        offsets = column.offsets
        return (column.values.dtype == dtype and offsets[0] == 0 and offsets[-1] == len(column.values)
                and bool(np.all(np.diff(offsets) >= 0)))
    if column.dtype != dtype or column.shape != ((rows, dim) if kind == "matrix" else (rows,)):
        return False
    if dtype.kind == "b":
        return set(column.view(np.uint8).tolist()) <= {0, 1}
    return kind != "strings" or all(isinstance(s, str) for s in column.tolist())


def _token_outcomes(buf: bytes, width: int) -> list[list[tuple[str, Any]]]:
    """Every token decoder of both backends on ``buf``: ("ok", rows) or ("error", message) each."""
    results = []
    for codec in CODECS:
        decoders: list[Callable[[], Any]] = [
            lambda codec=codec: codec.decode_tokens(buf, np.int16).to_lists(),
            lambda codec=codec: codec.decode_tokens(buf, np.uint8).to_lists(),
            lambda codec=codec: codec.decode_tokens_lists(buf),
            lambda codec=codec: _dense(codec, buf, width),
        ]
        outcome: list[tuple[str, Any]] = []
        for decode in decoders:
            try:
                outcome.append(("ok", decode()))
            except CodecError as exc:
                outcome.append(("error", str(exc)))
        results.append(outcome)
    return results


def _dense(codec: backend.TokenCodec, buf: bytes, width: int) -> list[list[int]]:
    rows = struct.unpack_from("<Q", buf, 8)[0] if len(buf) >= 16 else 0
    out = np.zeros((min(rows, 64), width), dtype=np.int32)
    codec.decode_tokens_dense(buf, out)
    return out.tolist()


def run(mutants: int, seed: int = 0) -> dict[str, Any]:
    samples = _samples()
    others = [s[2] for s in samples]
    rng = random.Random(seed)
    report: dict[str, Any] = {"mutants": 0, "calls": 0, "codec_errors": 0, "decoded": 0, "malformed": [],
                              "other": [], "disagree": [], "exact": 0, "encodings": sorted({s[1] for s in samples}),
                              "samples": len(samples)}
    for name, encoding, data, kind, dtype, dim, column in samples:  # the unmutated chunks decode exactly
        got = decode_column(encoding, data, len(column), kind, dtype, dim)
        want = column.to_lists() if isinstance(column, Ragged) else column.tolist()
        if kind == "strings":
            want = ["" if v is None else v for v in want]  # a null slot is stored as ""; nulls live in masks
        same = (got.to_lists() if isinstance(got, Ragged) else got.tolist()) == want
        report["exact"] += same
        if not same:
            report["malformed"].append(f"{name}: the unmutated chunk does not decode to its column")
    for i in range(mutants):
        name, encoding, data, kind, dtype, dim, column = samples[i % len(samples)]
        buf = mutate_chunk(encoding, data, rng, others)
        report["mutants"] += 1
        rows = len(column) if rng.random() < 0.8 else max(0, len(column) + rng.choice([-1, 1, 5]))
        wanted = dtype
        if kind == "tokens" and rng.random() < 0.5:
            wanted = np.dtype(rng.choice(["int8", "uint8", "int16", "uint32", "int64"]))
        try:
            report["calls"] += 1
            decoded = decode_column(encoding, buf, rows, kind, wanted, dim)
        except CorruptionError:  # CodecError is one
            report["codec_errors"] += 1
        except Exception as exc:
            report["other"].append(f"{name} {encoding} mutant {i}: {type(exc).__name__}: {exc} "
                                   f"{traceback.format_exc(limit=-2)!r} buf={buf[:64].hex()}")
        else:
            report["decoded"] += 1
            if not well_formed(decoded, rows, kind, wanted, dim):
                report["malformed"].append(f"{name} {encoding} mutant {i}: buf={buf[:64].hex()}")
        if encoding == "tokens1":
            try:
                report["calls"] += 8
                compiled, twin = _token_outcomes(buf, 48 if "squad" in name else 5)
                if compiled != twin:
                    report["disagree"].append(f"{name} mutant {i}: buf={buf[:64].hex()}")
            except Exception as exc:
                report["other"].append(f"{name} token decoders, mutant {i}: {type(exc).__name__}: {exc} "
                                       f"buf={buf[:64].hex()}")
    return report


def _fuzz_in_child(mutants: int, build: str) -> tuple[int, dict[str, Any] | None, str]:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), str(mutants), build], capture_output=True,
                          text=True, env=env, timeout=1800)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, (json.loads(lines[-1]) if proc.returncode == 0 and lines else None), proc.stderr[-3000:]


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("mutants", [20_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
def test_mutated_chunks_of_every_encoding_decode_to_codec_errors_or_well_formed_columns(
    mutants: int, build: str, record_property: Callable[[str, object], None]
) -> None:
    status, report, stderr = _fuzz_in_child(mutants, build)
    if report is None:
        record_property("figure", f"decoder fuzz ({build}): the fuzzing interpreter died (status {status}): 1 crash")
        pytest.fail(f"the fuzzing interpreter died with status {status}:\n{stderr}")
    record_property("figure", f"decoder fuzz ({build}): {report['mutants']} mutants of "
                              f"{len(report['encodings'])} encodings ({report['calls']} decoder calls): "
                              f"{report['codec_errors']} CodecError, "
                              f"{report['decoded']} decoded well-formed, {len(report['malformed'])} malformed, "
                              f"{len(report['other'])} other exceptions, {len(report['disagree'])} backend "
                              "disagreements, 0 crashes")
    assert report["exact"] == report["samples"] and not report["malformed"], report["malformed"][:5]
    assert not report["other"], report["other"][:5]
    assert not report["disagree"], report["disagree"][:5]
    assert report["codec_errors"] > 0 and report["decoded"] > 0


def _run_bomb(values: int) -> bytes:
    """A 57-byte tokens1 block: one row, nothing kept, a trailing run of ``values`` zeros."""
    body = struct.pack("<QQB", values, 0, 0)
    return struct.pack("<4sBBBBQQQq", b"MLTK", 1, 0, 1, 8, 1, 0, values, 0) + body


@pytest.mark.parametrize("values", [2**40, 2**62])
def test_a_tokens1_block_claiming_a_run_of_trillions_of_values_is_a_codec_error(values: int) -> None:
    """Like the zstd step's expansion bound: a few bytes must not make the reader allocate terabytes."""
    with pytest.raises(CodecError):
        decode_column("tokens1", _run_bomb(values), 1, "tokens", np.dtype(np.int8))
    for codec in CODECS:
        with pytest.raises(CodecError):
            codec.decode_tokens_lists(_run_bomb(values))


if __name__ == "__main__":
    faulthandler.enable()
    if backend.BACKEND == "cython" and len(sys.argv) > 2:
        backend.KERNELS.select_build(sys.argv[2])
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
