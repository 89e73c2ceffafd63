"""tokens1: round trips, compiled kernels against the numpy twin, decoder fuzzing, and size.

Both kernel modules are imported explicitly and run side by side through
``TokenCodec``, the compiled one once per build of its min/max loops (``_tokens.builds()``:
the baseline and, on x86-64, AVX2); with ``MEMORA_LITE_BACKEND=numpy`` the compiled one
may be missing, and only then are its tests skipped.
"""

from __future__ import annotations

import doctest
import os
import platform
import struct
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memora_lite.codecs import backend, tokens_numpy
from memora_lite.columns import Ragged
from memora_lite.errors import CodecError

NUMPY_REQUESTED = os.environ.get("MEMORA_LITE_BACKEND", "").strip().lower() == "numpy"
try:
    from memora_lite.codecs import _tokens
except ImportError:
    if not NUMPY_REQUESTED:
        raise
    _tokens = None  # type: ignore[assignment]



def _one_build(name: str) -> Any:
    """The compiled kernels with build ``name`` in use during each of their calls, and during
    each method call of the objects their classes make (a row decoder decodes later)."""

    def pinned(kernel: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            before = _tokens.select_build(name)
            try:
                result = kernel(*args, **kwargs)
            finally:
                _tokens.select_build(before)
            if isinstance(kernel, type):
                public = {m: getattr(result, m) for m in dir(result) if not m.startswith("_")}
                return SimpleNamespace(**{m: pinned(v) if callable(v) else v for m, v in public.items()})
            return result

        return call

    kernels = {k: pinned(v) for k, v in vars(_tokens).items() if callable(v) and not k.startswith("_")}
    return SimpleNamespace(__name__=f"_tokens[{name}]", **kernels)


TWIN = backend.TokenCodec(tokens_numpy)
COMPILED_BUILDS = [backend.TokenCodec(_one_build(name)) for name in _tokens.builds()] if _tokens is not None else []
CODECS = [TWIN, *COMPILED_BUILDS]
needs_compiled = pytest.mark.skipif(_tokens is None, reason="MEMORA_LITE_BACKEND=numpy, no compiled kernels")
each_codec = pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.kernels.__name__.rsplit(".", 1)[-1])

INT_DTYPES = [np.dtype(t) for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")]
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def squad_like(n_rows: int, seed: int = 0, width: int = 384, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SQuAD-shaped ``input_ids`` and ``attention_mask``, ``(n_rows, width)`` each.

    Each paragraph (Zipf-distributed word ids, 1,000..50,000) is asked 1-8
    questions; a row is ``[CLS] question [SEP] context [SEP]`` cut to ``width``
    and padded with ``pad``, so consecutive rows share their context and about
    45% of the slots are real tokens.
    """
    rng = np.random.default_rng(seed)
    ids = np.full((n_rows, width), pad, dtype=np.int32)
    mask = np.zeros((n_rows, width), dtype=np.int8)

    def words(k: int) -> np.ndarray:
        return (999 + np.minimum(rng.zipf(1.15, size=k), 49_000)).astype(np.int32)

    row = 0
    while row < n_rows:
        context = words(int(np.clip(rng.lognormal(np.log(140), 0.5), 30, 700)))
        for _ in range(int(rng.integers(1, 9))):
            if row == n_rows:
                break
            question = words(int(rng.integers(6, 25)))
            tokens = np.concatenate([[101], question, [102], context[: width - len(question) - 3], [102]])
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
            row += 1
    return ids, mask


def _bytes_per_row(matrix: np.ndarray, block_rows: int = 1000, level: int = 3) -> float:
    blocks = [Ragged.from_matrix(matrix[s : s + block_rows]) for s in range(0, len(matrix), block_rows)]
    return sum(len(backend.encode_tokens(b.values, b.offsets, level)) for b in blocks) / len(matrix)


# --- strategies -------------------------------------------------------------------------------


def _dtype_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), min(int(info.max), I64_MAX)


@st.composite
def token_blocks(draw: st.DrawFn) -> tuple[np.dtype, list[list[int]]]:
    """An int dtype and rows within its range: a head of values, then a run of one value."""
    dtype = draw(st.sampled_from(INT_DTYPES))
    lo, hi = _dtype_range(dtype)
    element = st.one_of(
        st.integers(max(lo, -3), min(hi, 3)),
        st.sampled_from([lo, hi, lo + 1, hi - 1]),
        st.integers(lo, hi),
    )
    row = st.builds(
        lambda head, value, count: head + [value] * count,
        st.lists(element, max_size=12),
        element,
        st.integers(0, 40),  # runs shorter and longer than the split kernel's 8-byte steps, for every width
    )
    return dtype, draw(st.lists(row, max_size=8))


# --- backend choice ---------------------------------------------------------------------------


def test_backend_is_compiled_unless_numpy_is_requested() -> None:
    from memora_lite.codecs import BACKEND as live

    assert live == ("numpy" if NUMPY_REQUESTED else "cython")


def test_missing_build_is_an_import_error_that_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "memora_lite.codecs._tokens", None)
    monkeypatch.setenv("MEMORA_LITE_BACKEND", "cython")
    with pytest.raises(ImportError, match=r"pip install \.") as info:
        backend._load_kernels()
    assert "MEMORA_LITE_BACKEND=numpy" in str(info.value)
    monkeypatch.setenv("MEMORA_LITE_BACKEND", "numpy")
    assert backend._load_kernels() == ("numpy", tokens_numpy)
    monkeypatch.setenv("MEMORA_LITE_BACKEND", "fortran")
    with pytest.raises(ImportError, match="fortran"):
        backend._load_kernels()


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags as the Linux kernel reports them, or None (another OS)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return set(next(line for line in cpuinfo if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return None


@needs_compiled
def test_every_build_the_cpu_runs_is_built_and_the_best_is_in_use() -> None:
    """The AVX2 build must not vanish quietly (a changed guard in csrc/mlite_tokens.c would
    leave only the slower baseline); the tests above run each build this test finds."""
    flags = _cpu_flags()
    if platform.machine() == "x86_64" and flags is not None:
        assert _tokens.builds() == (("baseline", "avx2") if "avx2" in flags else ("baseline",))
    assert _tokens.build() == _tokens.builds()[-1]
    assert [c.kernels.__name__ for c in COMPILED_BUILDS] == [f"_tokens[{b}]" for b in _tokens.builds()]


@needs_compiled
def test_a_selected_build_stays_in_use_until_another_is_selected() -> None:
    best = _tokens.build()
    try:
        for name in _tokens.builds():
            _tokens.select_build(name)
            assert _tokens.build() == name
        with pytest.raises(ValueError, match="no 'neon' build of the token kernels here; this module and CPU run: "
                                             + ", ".join(_tokens.builds())):
            _tokens.select_build("neon")
        assert _tokens.build() == _tokens.builds()[-1]  # a refused selection changes nothing
    finally:
        _tokens.select_build(best)


@needs_compiled
def test_the_compiled_module_examples_run() -> None:
    """pytest's doctest collection does not import compiled modules: run their examples here."""
    result = doctest.testmod(_tokens, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


# --- parity -----------------------------------------------------------------------------------


@needs_compiled
@settings(max_examples=300)
@given(token_blocks(), st.integers(1, 3))
def test_compiled_and_numpy_encodings_are_byte_identical(
    block: tuple[np.dtype, list[list[int]]], level: int
) -> None:
    dtype, rows = block
    ragged = Ragged.from_lists(rows, dtype)
    expected = TWIN.encode_tokens(ragged.values, ragged.offsets, level)
    for compiled in COMPILED_BUILDS:
        assert compiled.encode_tokens(ragged.values, ragged.offsets, level) == expected
        assert compiled.encode_token_lists(rows, level) == expected
    assert TWIN.encode_token_lists(rows, level) == expected


@settings(max_examples=300)
@given(token_blocks(), st.sampled_from(INT_DTYPES))
def test_every_backend_decodes_every_block_identically_and_exactly(
    block: tuple[np.dtype, list[list[int]]], out_dtype: np.dtype
) -> None:
    dtype, rows = block
    ragged = Ragged.from_lists(rows, dtype)
    buf = TWIN.encode_tokens(ragged.values, ragged.offsets)
    lo, hi = _dtype_range(out_dtype)
    fits = all(lo <= v <= hi for row in rows for v in row)
    width = ragged.uniform_width()
    for codec in CODECS:
        assert codec.decode_tokens_lists(buf) == rows
        same = codec.decode_tokens(buf, dtype)
        assert same.values.dtype == dtype
        assert same.to_lists() == rows
        np.testing.assert_array_equal(same.offsets, ragged.offsets)
        if fits:
            assert codec.decode_tokens(buf, out_dtype).to_lists() == rows
        else:
            with pytest.raises(CodecError, match="does not fit"):
                codec.decode_tokens(buf, out_dtype)
        if width is not None:
            out = np.empty((len(rows), width), dtype=dtype)
            codec.decode_tokens_dense(buf, out)
            assert out.tolist() == rows


@settings(max_examples=300)
@given(token_blocks(), st.data())
def test_opened_blocks_decode_any_row_range_as_the_whole_block_does(
    block: tuple[np.dtype, list[list[int]]], data: st.DataObject
) -> None:
    dtype, rows = block
    ragged = Ragged.from_lists(rows, dtype)
    buf = TWIN.encode_tokens(ragged.values, ragged.offsets)
    start = data.draw(st.integers(0, len(rows)))
    stop = data.draw(st.integers(start, len(rows)))
    want = rows[start:stop]
    widths = {len(r) for r in want}
    width = 0 if not want else widths.pop() if len(widths) == 1 else None
    for codec in CODECS:
        opened = codec.open_block(buf)
        assert len(opened) == len(rows)
        assert opened.lists(start, stop) == want
        assert [opened.row(i) for i in range(start, stop)] == want
        part = opened.ragged(start, stop, dtype)
        assert part.values.dtype == dtype and part.to_lists() == want
        assert opened.width(start, stop) == width
        if width is not None:
            out = np.empty((len(want), width), dtype=dtype)
            opened.dense_into(start, stop, out)
            assert out.tolist() == want


@each_codec
def test_opened_blocks_refuse_rows_they_do_not_hold(codec: backend.TokenCodec) -> None:
    opened = codec.open_block(codec.encode_token_lists([[1, 2], [3]]))
    for start, stop in ((0, 3), (-1, 1), (2, 1)):
        with pytest.raises(IndexError):
            opened.lists(start, stop)
    for i in (-1, 2):
        with pytest.raises(IndexError, match=f"row {i} of a 2-row"):
            opened.row(i)
    with pytest.raises(CodecError, match="width"):
        opened.dense_into(0, 2, np.empty((2, 2), dtype=np.int64))


# An unchecked block: w (3 is no width), lw, n_rows, n_kept, n_values, base and the body's bytes.
UNCHECKED_BLOCKS = (
    st.sampled_from([1, 2, 4, 8, 3]),
    st.sampled_from([1, 2, 4, 8]),
    st.integers(0, 6),
    st.integers(0, 12),
    st.integers(0, 40),
    st.integers(I64_MIN, I64_MAX),
    st.binary(max_size=120),
)


@settings(max_examples=500)
@given(
    *UNCHECKED_BLOCKS,
    st.integers(0, 8),
    st.integers(0, 8),
    st.integers(0, 14),
    st.sampled_from([-1, 0, 2, 3]),
    st.integers(0, 48),
    st.sampled_from(INT_DTYPES),
    st.booleans(),
)
def test_row_range_kernels_agree_and_never_overrun_on_unchecked_bodies(
    w: int, lw: int, n_rows: int, n_kept: int, n_values: int, base: int, body: bytes,
    first: int, count: int, kept_before: int, width: int, room: int, dtype: np.dtype, kept_shared: bool,
) -> None:
    """``unpack_rows`` and ``unpack_lists`` read bodies nobody checked: whatever the bytes and
    arguments, both backends give one status, and on success the same values."""
    header = backend.TokenHeader(n_rows, n_kept, n_values, base, w, lw, kept_shared)
    lo, hi = _dtype_range(dtype)
    results = []
    for kernels in [c.kernels for c in CODECS]:
        out = np.zeros(room, dtype=dtype)
        offsets = np.zeros(count + 1, dtype=np.int64)
        status = kernels.unpack_rows(body, header, first, count, kept_before, width, out.view(np.uint8),
                                     dtype.itemsize, lo, hi, offsets)
        lists = kernels.unpack_lists(body, header, first, count, kept_before, room)
        results.append((status, out.tolist() if status == 0 else None, offsets.tolist() if status == 0 else None,
                        lists))
    assert all(r == results[0] for r in results)


@settings(max_examples=500)
@given(
    *UNCHECKED_BLOCKS,
    st.lists(st.integers(-3, 40), min_size=7, max_size=7),
    st.lists(st.integers(-3, 14), min_size=7, max_size=7),
    st.integers(-1, 7),
    st.booleans(),
)
def test_row_decoders_agree_and_never_overrun_whatever_body_and_index(
    w: int, lw: int, n_rows: int, n_kept: int, n_values: int, base: int, body: bytes,
    starts: list[int], kept_starts: list[int], row: int, kept_shared: bool,
) -> None:
    """A row decoder trusts neither its body nor its index (a scratch body can change under a
    cached index): whatever both hold, both backends give the same row or the same error."""
    header = backend.TokenHeader(n_rows, n_kept, n_values, base, w, lw, kept_shared)
    index = np.array(starts[: n_rows + 1], dtype=np.int64), np.array(kept_starts[: n_rows + 1], dtype=np.int64)
    outcomes = []
    for kernels in [c.kernels for c in CODECS]:
        try:
            outcomes.append(kernels.RowDecoder(body, header, *index, backend._raise_status).row(row))
        except (CodecError, IndexError, ValueError) as exc:
            outcomes.append((type(exc), str(exc)))
    assert all(o == outcomes[0] for o in outcomes)


@each_codec
def test_a_row_decoder_refuses_a_body_that_changed_under_its_index(codec: backend.TokenCodec) -> None:
    body = bytearray(codec.encode_token_lists([[5, 6, 7, 0, 0], [8, 0, 0, 0, 0]], level=None))
    opened = codec.open_block(body)
    assert opened.row(0) == [5, 6, 7, 0, 0]
    lengths_at = backend.HEADER_SIZE  # the first row's length, rewritten under the index built from it
    body[lengths_at] = 3
    with pytest.raises(CodecError, match="tokens1 block"):
        opened.row(0)


@each_codec
def test_a_row_decoder_raises_even_when_its_error_callback_returns(codec: backend.TokenCodec) -> None:
    opened = codec.open_block(codec.encode_token_lists([[5, 6, 0]], level=None))
    seen: list[int] = []
    lying_starts = np.array([0, 2], dtype=np.int64)  # the row holds 3 values
    decoder = codec.kernels.RowDecoder(opened.body, opened.header, lying_starts, opened.kept_starts, seen.append)
    with pytest.raises(ValueError, match="tokens1 kernel status"):
        decoder.row(0)
    assert seen and seen[0] != 0


ADVERSARIAL = {
    "zero rows": [],
    "empty rows": [[], [], []],
    "all padding": [[0] * 384, [0] * 384],
    "no padding": [[5, 6, 7], [1, 2, 3]],
    "mask not a prefix": [[1, 0, 1, 0, 0], [0, 0, 1, 1, 1], [0, 1]],
    "negative values": [[-5, -1, -1], [-(2**40), 3]],
    "int64 limits": [[I64_MIN, I64_MAX, I64_MIN], [I64_MAX] * 4, [I64_MIN]],
    "one row, one value": [[42]],
    "long run after empty rows": [[], [], [7] * 1000],
    "attention masks": [[1] * 5 + [0] * 3, [1] * 8, [0] * 8, [], [1, 0]],
    "every kept value the same": [[7, 7, 0], [7, 1], [7], [3, 3]],
}


@each_codec
@pytest.mark.parametrize("rows", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_adversarial_rows_round_trip(codec: backend.TokenCodec, rows: list[list[int]]) -> None:
    buf = codec.encode_token_lists(rows)
    assert buf == codec.encode_tokens(*_flat(rows))
    assert codec.decode_tokens_lists(buf) == rows
    decoded = codec.decode_tokens(buf, np.int64)
    assert decoded.to_lists() == rows and decoded.offsets.dtype == np.int64
    assert len(decoded) == len(rows)


def _flat(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ragged = Ragged.from_lists(rows, np.dtype(np.int64))
    return ragged.values, ragged.offsets


def test_documented_example_is_the_exact_bytes_written() -> None:
    """docs/format.md#tokens1 walks through these bytes; the format may never change under them."""
    buf = backend.encode_token_lists([[101, 7, 102, 0, 0], [101, 102, 0, 0, 0]])
    assert buf.hex() == (
        "4d4c544b01000101"  # magic, version 1, flags 0 (raw), w 1, lw 1
        "0200000000000000"  # n_rows
        "0500000000000000"  # n_kept
        "0a00000000000000"  # n_values
        "0000000000000000"  # base
        "0505"  # L
        "0302"  # K
        "0000"  # run values
        "6507666566"  # kept values
    )


@each_codec
def test_a_kept_value_shared_by_every_row_is_stored_once(codec: backend.TokenCodec) -> None:
    masks = [[1] * k + [0] * (384 - k) for k in (100, 384, 0, 250)]
    buf = codec.encode_token_lists(masks, level=None)
    assert buf[5] == backend.FLAG_KEPT_SHARED
    # Per row: L, K (2 bytes each) and the run value (1 byte); then the one shared kept value.
    assert len(buf) == backend.HEADER_SIZE + 4 * 5 + 1
    assert codec.decode_tokens_lists(buf) == masks
    opened = codec.open_block(buf)
    assert opened.lists(1, 3) == masks[1:3]
    out = np.full((2, 384), 9, dtype=np.int8)
    opened.dense_into(2, 4, out)
    assert out.tolist() == masks[2:]
    one_kept = codec.encode_token_lists([[1, 0, 0], [0, 0]], level=None)  # a single kept value: nothing to share
    assert one_kept[5] == 0


def test_rows_that_compress_are_stored_as_zstd_and_others_raw() -> None:
    flags_at = 5
    assert backend.encode_token_lists([[1, 2, 3, 0, 0]] * 500)[flags_at] == backend.FLAG_ZSTD
    rng = np.random.default_rng(1)
    noise = rng.integers(I64_MIN, I64_MAX, size=64, dtype=np.int64)
    assert backend.encode_tokens(noise, np.array([0, 64]))[flags_at] == 0
    # Token ids that zstd shrinks by only ~2%: not worth a frame to decode at every read.
    rows = [rng.integers(0, 30000, 200).tolist() for _ in range(20)]
    body = backend.encode_token_lists(rows, level=None)[backend.HEADER_SIZE:]
    assert 0.01 < 1 - len(backend.zstd_compress(body, 3)) / len(body) < 1 / 8
    assert backend.encode_token_lists(rows)[flags_at] == 0


# --- encoding errors --------------------------------------------------------------------------


@each_codec
@pytest.mark.parametrize(
    ("rows", "error", "message"),
    [
        ([[1, 2], [3, 1.5]], TypeError, r"row 1, position 1: float 1\.5 is not an int"),
        ([["7"]], TypeError, "row 0, position 0: str"),
        ([[0], [2**63]], OverflowError, "row 1, position 0: 9223372036854775808 does not fit int64"),
        ([[-(2**63) - 1]], OverflowError, "does not fit int64"),
        ([[1], 5], TypeError, "not iterable"),
    ],
)
def test_bad_list_elements_are_refused_with_their_position(
    codec: backend.TokenCodec, rows: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        codec.encode_token_lists(rows)


@each_codec
def test_list_rows_may_hold_numpy_ints_and_bools(codec: backend.TokenCodec) -> None:
    rows = [[np.int32(5), True, np.uint8(7)], (1, 2)]
    assert codec.decode_tokens_lists(codec.encode_token_lists(rows)) == [[5, 1, 7], [1, 2]]


@each_codec
def test_bad_arrays_are_refused(codec: backend.TokenCodec) -> None:
    with pytest.raises(TypeError, match="integer array"):
        codec.encode_tokens(np.array([1.0, 2.0]), np.array([0, 2]))
    with pytest.raises(OverflowError, match="does not fit int64"):
        codec.encode_tokens(np.array([2**63], dtype=np.uint64), np.array([0, 1]))
    for offsets in ([1, 2], [0, 3], [0, 2, 1, 2], []):
        with pytest.raises(ValueError, match="offsets"):
            codec.encode_tokens(np.array([1, 2], dtype=np.int8), np.array(offsets, dtype=np.int64))


@needs_compiled
def test_compiled_encoder_kernels_refuse_arguments_that_would_overrun() -> None:
    values = np.arange(6, dtype=np.int64)
    kept = np.zeros(2, dtype=np.int64)
    for offsets in ([0, 3, 7], [0, 4, 3], [1, 3, 6], [0, 6]):
        with pytest.raises(ValueError, match="offsets"):
            _tokens.split(values, np.array(offsets, dtype=np.int64), kept)
    offsets = np.array([0, 3, 6], dtype=np.int64)
    header = backend.TokenHeader(2, 2, 6, 0, 1, 1)
    with pytest.raises(ValueError, match="kept"):
        _tokens.pack(values, offsets, np.array([4, -2], dtype=np.int64), header, np.zeros(8, np.uint8))
    with pytest.raises(ValueError, match="body length"):
        _tokens.pack(values, offsets, np.array([1, 1], dtype=np.int64), header, np.zeros(7, np.uint8))


# --- dense decoding ---------------------------------------------------------------------------


@each_codec
@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_dense_decoding_fills_the_callers_array(codec: backend.TokenCodec, dtype: np.dtype) -> None:
    ids, _ = squad_like(50, seed=3, width=64)
    rows = Ragged.from_matrix(ids)
    buf = codec.encode_tokens(rows.values, rows.offsets)
    out = np.empty((50, 64), dtype=dtype)
    if int(ids.max()) > _dtype_range(dtype)[1]:
        with pytest.raises(CodecError, match="does not fit"):
            codec.decode_tokens_dense(buf, out)
    else:
        assert codec.decode_tokens_dense(buf, out) is None
        np.testing.assert_array_equal(out, ids)


@each_codec
def test_dense_decoding_refuses_rows_of_another_width(codec: backend.TokenCodec) -> None:
    buf = codec.encode_token_lists([[1, 2, 3], [4, 5]])
    with pytest.raises(CodecError, match="differs from the requested width"):
        codec.decode_tokens_dense(buf, np.empty((2, 3), dtype=np.int32))
    with pytest.raises(CodecError, match="holds 2 rows but out has 3"):
        codec.decode_tokens_dense(buf, np.empty((3, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        codec.decode_tokens_dense(buf, np.empty((3, 2), dtype=np.int32).T)
    with pytest.raises(TypeError, match="integer dtype"):
        codec.decode_tokens_dense(buf, np.empty((2, 3), dtype=np.float32))


# --- decoder fuzzing --------------------------------------------------------------------------


def _decoders(codec: backend.TokenCodec) -> dict[str, Callable[[bytes], Any]]:
    def dense(width: int, dtype: str) -> Callable[[bytes], Any]:
        def run(buf: bytes) -> Any:
            rows = struct.unpack_from("<Q", buf, 8)[0] if len(buf) >= 16 else 0
            out = np.zeros((min(rows, 64), width), dtype=dtype)
            codec.decode_tokens_dense(buf, out)
            return out.tolist()

        return run

    def opened(buf: bytes) -> Any:
        block = codec.open_block(buf)
        n = len(block)
        return block.lists(0, n), block.lists(n // 2, n), block.ragged(1 if n else 0, n, np.dtype(np.int64)).to_lists()

    return {
        "opened": opened,
        "int64": lambda buf: _valid_ragged(codec.decode_tokens(buf, np.int64), np.int64),
        "uint8": lambda buf: _valid_ragged(codec.decode_tokens(buf, np.uint8), np.uint8),
        "int16": lambda buf: _valid_ragged(codec.decode_tokens(buf, np.int16), np.int16),
        "lists": codec.decode_tokens_lists,
        "dense 5 int32": dense(5, "int32"),
        "dense 3 int8": dense(3, "int8"),
    }


def _valid_ragged(ragged: Ragged, dtype: type) -> list[list[int]]:
    assert ragged.values.dtype == dtype and ragged.offsets.dtype == np.int64
    assert ragged.offsets[0] == 0 and ragged.offsets[-1] == len(ragged.values)
    assert np.all(np.diff(ragged.offsets) >= 0)
    return ragged.to_lists()


def _outcomes(buf: bytes) -> dict[str, tuple[str, Any]]:
    """Per decoder: ("error", message) or ("ok", result), identical across backends."""
    results: dict[str, tuple[str, Any]] = {}
    for codec in CODECS:
        for name, decode in _decoders(codec).items():
            try:
                outcome: tuple[str, Any] = ("ok", decode(buf))
            except CodecError as exc:
                outcome = ("error", str(exc))
            assert results.setdefault(name, outcome) == outcome, f"backends disagree on {name}"
    lists, ragged = results["lists"], results["int64"]
    assert lists == ragged, "decode_tokens_lists and decode_tokens disagree"
    return results


_NOISE = np.random.default_rng(7).integers(I64_MIN, I64_MAX, size=12).tolist()
FUZZ_ROWS = {
    # Narrow values, mixed row lengths, runs and empty rows: compresses, so the body is zstd.
    "zstd": [[101, 7, 8, 102, 0, 0, 0], [], [101, 9, 102, 0, 0, 0], [5, 5, 5, 5], [101, 1, 2, 3, 4]] * 4,
    # Random 8-byte values: zstd does not help, so the body is stored raw.
    "raw": [_NOISE[:4], [], _NOISE[4:8], [*_NOISE[8:], 0, 0]],
    # Rows of one width, for the dense decoders.
    "dense": [[1, 2, 3, 0, 0], [4, 0, 0, 0, 0]] * 6,
    # Attention masks: one shared kept value (FLAG_KEPT_SHARED).
    "mask": [[1] * k + [0] * (40 - k) for k in range(0, 40, 3)] * 2,
}


def _fuzz_block(name: str) -> bytes:
    buf = backend.encode_token_lists(FUZZ_ROWS[name])
    assert bool(buf[5] & backend.FLAG_ZSTD) == (name != "raw")
    return buf


@pytest.mark.parametrize("name", FUZZ_ROWS)
def test_every_truncation_of_a_valid_block_is_a_codec_error(name: str) -> None:
    buf = _fuzz_block(name)
    assert _outcomes(buf)["lists"] == ("ok", FUZZ_ROWS[name])
    for end in range(len(buf)):
        for kind, outcome in _outcomes(buf[:end]).items():
            assert outcome[0] == "error", f"{kind} decoded a block cut at byte {end}"


@pytest.mark.parametrize("name", FUZZ_ROWS)
def test_every_bit_flip_of_a_valid_block_is_refused_or_decodes_consistently(name: str) -> None:
    buf = bytearray(_fuzz_block(name))
    for bit in range(8 * len(buf)):
        buf[bit // 8] ^= 1 << (bit % 8)
        _outcomes(bytes(buf))
        buf[bit // 8] ^= 1 << (bit % 8)


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_a_decoder(data: bytes) -> None:
    _outcomes(data)


@settings(max_examples=400)
@given(
    st.sampled_from([0, backend.FLAG_ZSTD, backend.FLAG_KEPT_SHARED, backend.FLAG_ZSTD | backend.FLAG_KEPT_SHARED]),
    st.sampled_from([1, 2, 4, 8, 3]),
    st.sampled_from([1, 2, 4, 8, 0]),
    st.integers(0, 6),
    st.integers(0, 12),
    st.integers(0, 40),
    st.integers(I64_MIN, I64_MAX),
    st.binary(max_size=120),
)
def test_random_bodies_behind_plausible_headers_never_crash_a_decoder(
    flags: int, w: int, lw: int, n_rows: int, n_kept: int, n_values: int, base: int, body: bytes
) -> None:
    header = struct.pack("<4sBBBBQQQq", b"MLTK", 1, flags, w, lw, n_rows, n_kept, n_values, base)
    _outcomes(header + body)
    _outcomes(header + backend.zstd_compress(body, 1))


def _frame_claiming(size: int) -> bytes:
    """A zstd frame whose header claims ``size`` content bytes, then one raw 1-byte block."""
    return b"\x28\xb5\x2f\xfd\xe0" + struct.pack("<Q", size) + b"\x09\x00\x00x"


def test_a_zstd_frame_claiming_an_absurd_size_is_refused_before_decompressing() -> None:
    n_rows = 2**40
    header = struct.pack("<4sBBBBQQQq", b"MLTK", 1, backend.FLAG_ZSTD, 8, 8, n_rows, 0, 0, 0)
    with pytest.raises(CodecError, match="cannot hold"):
        backend.decode_tokens(header + _frame_claiming(n_rows * 24), np.int64)
    with pytest.raises(CodecError, match=r"100 bytes where \d+ are expected"):
        backend.decode_tokens(header + _frame_claiming(100), np.int64)
    with pytest.raises(CodecError, match="cannot hold"):
        backend.zstd_decompress(_frame_claiming(2**40), None, "test")


@each_codec
def test_headers_that_lie_are_codec_errors(codec: backend.TokenCodec) -> None:
    good = codec.encode_token_lists([[1, 2, 0, 0]])
    for field, value, message in [
        (0, b"XLTK", "not a tokens1 block"),
        (4, b"\x02", "version 2"),
        (5, b"\x82", "unknown flags"),
        (5, b"\x04", "unknown flags"),
        (6, b"\x03", "width byte"),
        (7, b"\x00", "width byte"),
    ]:
        bad = good[:field] + value + good[field + len(value) :]
        with pytest.raises(CodecError, match=message):
            codec.decode_tokens(bad, np.int64)
    with pytest.raises(CodecError, match="shorter than its 40-byte header"):
        codec.decode_tokens(good[:39], np.int64)


# --- size -------------------------------------------------------------------------------------


def test_squad_shaped_rows_stay_small() -> None:
    ids, mask = squad_like(4000)
    assert 0.4 < mask.mean() < 0.5  # the shape the codec was designed on
    assert _bytes_per_row(ids) < 120
    assert _bytes_per_row(mask) < 8
    padded_with_one, _ = squad_like(4000, pad=1)
    assert _bytes_per_row(padded_with_one) < 120


NARROW_TARGETS = [np.dtype(t) for t in ("int8", "int16", "int32", "int64")]


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(INT_DTYPES), target=st.sampled_from(NARROW_TARGETS), data=st.data())
def test_narrowing_agrees_across_kernels_and_with_numpy(source: np.dtype, target: np.dtype, data: Any) -> None:
    """One read gives the range and the converted values; the array is withheld exactly when a
    value does not fit, whatever the kernel (the compiled one reads all but uint64)."""
    info = np.iinfo(source)
    edges = st.sampled_from([int(info.min), int(info.max), 0, 127, 128, -129, 32767, 32768, 2**31, -(2**31) - 1])
    values = data.draw(st.lists(st.one_of(st.integers(int(info.min), int(info.max)),
                                          edges.filter(lambda v: info.min <= v <= info.max)), max_size=200))
    array = np.array(values, dtype=source)
    if data.draw(st.booleans()) and len(array) > 1:
        array = array[::2]  # a strided view: read as is, never assumed contiguous
    lo_t, hi_t = np.iinfo(target).min, np.iinfo(target).max
    fits = all(lo_t <= v for v in array.tolist()) and all(v <= hi_t for v in array.tolist())
    for codec in CODECS:
        narrowed, lo, hi = codec.narrow_ints(array, target)
        assert (lo, hi) == ((int(array.min()), int(array.max())) if len(array) else (0, 0))
        if fits:
            assert narrowed is not None and narrowed.dtype == target and narrowed.tolist() == array.tolist()
        else:
            assert narrowed is None


@pytest.mark.skipif(backend.BACKEND != "cython", reason="MEMORA_LITE_BACKEND=numpy")
def test_the_compiled_narrowing_kernel_is_the_one_bulk_inserts_use(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = _tokens.narrow

    def narrow(values: np.ndarray, out: np.ndarray, threads: int) -> tuple[int, int, bool]:
        calls.append((values.dtype, threads))
        return real(values, out, threads)

    monkeypatch.setattr(_tokens, "narrow", narrow)
    column = np.arange(4096 * 384, dtype=np.int64).reshape(4096, 384) % 30_000
    narrowed, lo, hi = backend.narrow_ints(column.reshape(-1), np.dtype("int16"))
    assert calls == [(np.dtype("int64"), backend.NARROW_THREADS)]
    assert (lo, hi) == (0, 29_999) and narrowed.dtype == np.int16


@needs_compiled
@pytest.mark.parametrize("source, target", [("int64", "int16"), ("int64", "int8"), ("int32", "int64"),
                                            ("uint16", "int16"), ("int8", "int32")])
@pytest.mark.parametrize("threads", [2, 3, 8])
def test_narrowing_split_over_threads_equals_one_thread(source: str, target: str, threads: int) -> None:
    """A column of several thread parts (``NARROW_PART_BYTES`` of input each, on 64-value
    boundaries) narrows to the same values, range and verdict as on one thread, wherever its
    extremes lie: the first part, the last, either side of a boundary, the very last value."""
    source_t, target_t = np.dtype(source), np.dtype(target)
    n = threads * _tokens.NARROW_PART_BYTES // source_t.itemsize + 37  # the last part is short and odd
    rng = np.random.default_rng(threads)
    info = np.iinfo(source_t)
    values = rng.integers(max(info.min, -100), min(info.max, 100), size=n, endpoint=True).astype(source_t)
    part = (-(-n // threads) + 63) // 64 * 64  # where the second part starts, as the kernel splits
    for low_at, high_at, high in [(0, n - 1, 101), (part - 1, part, 120), (n - 1, 5, int(info.max)),
                                  (2 * part % n, n - 2, 127)]:
        case = values.copy()
        case[low_at], case[high_at] = max(int(info.min), -128), min(high, int(info.max))
        expected_lo, expected_hi = int(case.min()), int(case.max())
        for parts in (1, threads):
            out = np.full(n, -1, dtype=target_t)
            lo, hi, fits = _tokens.narrow(case, out, parts)
            assert (lo, hi) == (expected_lo, expected_hi)
            t_info = np.iinfo(target_t)
            assert fits == (t_info.min <= lo and hi <= t_info.max)
            assert np.array_equal(out, case.astype(target_t, casting="unsafe"))
