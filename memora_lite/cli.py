"""``memora-lite`` (also ``python -m memora_lite``): look into, query, move and check a store folder.

Every command works on one store folder (``--path``, default ``$MEMORA_LITE_PATH``,
else ``./memora_data``) and one project in it (``--project``, default ``default``);
both options go before or after the command. Commands that only read (``ls``,
``stat``, ``head``, ``query``, ``export``, ``verify``) open the store read-only,
so they run beside a process that is writing to it; ``import`` and ``compact``
take the writer lock. docs/cli.md has every command with examples.

Exit status: 0 on success, 1 when ``verify`` finds damage, 2 on bad input or any
other error (printed as ``memora-lite: error: ...``), 130 on Ctrl-C.

>>> import tempfile
>>> from memora_lite import Memora
>>> folder = tempfile.mkdtemp()
>>> with Memora(path=folder) as client:
...     _ = client.nosql.insert(collection_name="docs", data=[{"id": i, "title": f"t{i}"} for i in range(3)])
>>> main(["--path", folder, "head", "docs", "-n", "2", "--format", "json"])
{"id":0,"title":"t0"}
{"id":1,"title":"t1"}
0
>>> main(["--path", folder, "head", "nope"])  # the message goes to stderr
2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import zstandard
from tqdm import tqdm

from memora_lite.client import Memora
from memora_lite.errors import CollectionNotFoundError, CorruptionError, InvalidArgumentError, MemoraError
from memora_lite.interop import jsonl
from memora_lite.interop.scan import iter_chunks
from memora_lite.models import DataType, Field
from memora_lite.schema import element_dtype
from memora_lite.storage import filenames
from memora_lite.storage.engine import CollectionEngine, Options
from memora_lite.storage.manifest import Manifest
from memora_lite.storage.segment import BlockCache, SegmentReader
from memora_lite.storage.store import Store, resolve_root
from memora_lite.storage.wal import read_records

PROG = "memora-lite"
EXIT_DAMAGED = 1
EXIT_ERROR = 2
FILE_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
CELL_WIDTH = 40  # longest value shown in a table cell; longer ones end in "…"

EXAMPLES = """\
examples:
  memora-lite --path ./memora_data ls
  memora-lite stat finetune_data
  memora-lite head finetune_data -n 5 --fields input_ids,start_token
  memora-lite query finetune_data --filter "0 <= id < 50 and start_token > 0" --format json
  memora-lite export finetune_data train.parquet
  memora-lite import finetune_copy train.parquet
  memora-lite import squad_train ./squad_saved --split train      # a save_to_disk folder
  memora-lite verify && memora-lite compact finetune_data
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except MemoraError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (``| head``): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Inspect, query, import, export, verify and compact a memora_lite store folder.",
    )
    _store_options(parser, defaults=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str, example: str) -> Any:
        sub = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                                  epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        _store_options(sub, defaults=False)
        sub.set_defaults(run=run)
        return sub

    ls = command("ls", cmd_ls, "list collections: rows, segments, bytes on disk, compression ratio",
                 "memora-lite --path ./memora_data ls")
    _output_format(ls)

    stat = command("stat", cmd_stat, "show one collection: schema, segments, encodings per column",
                   "memora-lite stat finetune_data --format json > schema.json")
    stat.add_argument("collection")
    _output_format(stat)

    head = command("head", cmd_head, "print the first rows of a collection, in primary-key order",
                   "memora-lite head finetune_data -n 3 --fields input_ids")
    head.add_argument("collection")
    head.add_argument("-n", "--rows", type=_count, default=10, help="how many rows (default 10)")
    head.add_argument("--fields", type=_names, help="comma-separated fields to show (default all)")
    _output_format(head)

    query = command("query", cmd_query, "print the rows matching a filter, in primary-key order",
                    'memora-lite query finetune_data --filter "start_token > 100" --limit 20')
    query.add_argument("collection")
    query.add_argument("--filter", default="", help='a filter expression, e.g. "0 <= id < 50" (default: every row)')
    query.add_argument("--fields", type=_names, help="comma-separated fields to show (default all)")
    query.add_argument("--limit", type=_count, help="print at most this many rows")
    query.add_argument("--offset", type=_count, default=0, help="skip this many matching rows first")
    _output_format(query)

    load = command("import", cmd_import, "load a JSON Lines, Parquet or saved Hugging Face dataset into a collection",
                   "memora-lite import finetune_copy train.parquet")
    load.add_argument("collection")
    load.add_argument("file", help="a .jsonl/.ndjson/.json file, a .parquet file, or a save_to_disk folder")
    load.add_argument("--format", choices=("jsonl", "parquet", "hf"), help="file format (default: from the name)")
    load.add_argument("--split", help="split of a saved DatasetDict")
    load.add_argument("--primary-key", help="primary key column of a new collection (default: id)")
    load.add_argument("--schema", help="schema file for a new collection (as written by export --schema)")
    load.add_argument("--upsert", action="store_true", help="replace rows whose key is already stored")
    load.add_argument("--batch-rows", type=_positive, default=4096, help="rows per insert call (default 4096)")

    dump = command("export", cmd_export, "write a collection to JSON Lines or Parquet, in primary-key order",
                   "memora-lite export finetune_data train.jsonl --schema train.schema.json")
    dump.add_argument("collection")
    dump.add_argument("file", help="a .jsonl or .parquet file to write ('-' for JSON Lines on stdout)")
    dump.add_argument("--format", choices=("jsonl", "parquet"), help="file format (default: from the name)")
    dump.add_argument("--filter", default="", help="export only the rows matching this filter")
    dump.add_argument("--fields", type=_names, help="comma-separated fields to export (default all)")
    dump.add_argument("--schema", help="JSON Lines only: also write the schema here, for import --schema")
    dump.add_argument("--batch-rows", type=_positive, default=16_384, help="rows per step (default 16384)")

    verify = command("verify", cmd_verify, "read every block of every segment and log and check its checksum",
                     "memora-lite verify finetune_data")
    verify.add_argument("collections", nargs="*", metavar="COLLECTION", help="default: every collection")

    compact = command("compact", cmd_compact, "merge segments and drop deleted rows, freeing their space",
                      "memora-lite compact finetune_data")
    compact.add_argument("collections", nargs="*", metavar="COLLECTION", help="default: every collection")
    return parser


def _store_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """--path/--project/--quiet, accepted before the command and after it.

    The command's copies default to SUPPRESS, so they never overwrite a value given
    before the command.
    """
    group = parser.add_argument_group("store")
    group.add_argument("--path", default=None if defaults else argparse.SUPPRESS,
                       help="store folder (default: $MEMORA_LITE_PATH, else ./memora_data)")
    group.add_argument("--project", default=None if defaults else argparse.SUPPRESS,
                       help="project in the store (default: default)")
    group.add_argument("-q", "--quiet", action="store_true", default=False if defaults else argparse.SUPPRESS,
                       help="no progress bars or summaries")


def _output_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="table (default) or json (JSON Lines for rows)")


def _count(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (an int >= 0)")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


# -- opening the store -----------------------------------------------------------------------------


def _check_store(args: argparse.Namespace) -> None:
    root = resolve_root(args.path)
    folder = os.path.join(root, args.project or filenames.DEFAULT_PROJECT)
    if not os.path.isdir(folder):
        raise InvalidArgumentError(f"no memora_lite store at {root} (project "
                                   f"'{args.project or filenames.DEFAULT_PROJECT}'); --path names the store folder")


def _reader(args: argparse.Namespace) -> Memora:
    _check_store(args)
    return Memora(project_id=args.project, path=args.path, read_only=True)


def _store(args: argparse.Namespace) -> Store:
    _check_store(args)
    return Store(args.path, args.project, Options(read_only=True))


@contextlib.contextmanager
def _progress(args: argparse.Namespace, total: int | None, unit: str, desc: str) -> Iterator[Callable[[int], Any]]:
    """A tqdm bar on stderr, shown only when stderr is a terminal and --quiet is off."""
    bar = tqdm(total=total, unit=unit, unit_scale=True, desc=desc, file=sys.stderr, leave=False,
               disable=args.quiet or not sys.stderr.isatty())
    try:
        yield bar.update
    finally:
        bar.close()


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


# -- ls and stat -----------------------------------------------------------------------------------


def cmd_ls(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        listing = [_figures(store.engine(name)) for name in store.names()]
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(listing, indent=1))
        return 0
    rows = [[c["collection"], f"{c['rows']:,}", str(c["segments"]), _bytes(c["bytes_on_disk"]),
             _bytes(c["raw_bytes"]), _ratio(c["ratio"])] for c in listing]
    _print_table(["collection", "rows", "segments", "on disk", "raw", "ratio"], rows, numeric={1, 2, 3, 4, 5})
    return 0


def _figures(engine: CollectionEngine) -> dict[str, Any]:
    stats = engine.stats()
    stored = sum(_file_size(engine, filenames.segment_name(s.entry.number)) for s in engine.segments)
    raw = sum(_raw_bytes(s.reader, name) for s in engine.segments for name in s.reader.columns)
    return {
        "collection": engine.name,
        "rows": stats["row_count"],
        "segments": stats["segments"],
        "log_rows": stats["memtable_rows"],
        "bytes_on_disk": stats["bytes_on_disk"],
        "segment_bytes": stored,
        "raw_bytes": raw,
        "ratio": round(raw / stored, 2) if stored else None,
    }


def _file_size(engine: CollectionEngine, name: str) -> int:
    return engine.fs.file_size(os.path.join(engine.folder, name))


def _raw_bytes(reader: SegmentReader, name: str) -> int:
    """Bytes a column's blocks decode to, read from block headers alone (no block is decoded).

    Fixed-width columns: rows x width. ``tokens1``: values x element width, from its
    header. ``+zstd`` blocks: the content size in the zstd frame header. Others:
    their stored length, which is their raw length.
    """
    f = reader.schema.field(name)
    width = element_dtype(f).itemsize * ((f.dim or 1) if f.data_type is DataType.FLOAT_VECTOR else 1)
    total = 0
    for block, (encoding, offset, length, _crc) in enumerate(reader.columns[name]["blocks"]):
        if encoding in ("plain", "plain+zstd"):
            total += reader.block_size(block) * width
        elif encoding == "tokens1":
            n_values = int.from_bytes(reader.file.pread(offset + 24, 8), "little")  # docs/format.md#tokens1
            total += n_values * width
        elif encoding.endswith("+zstd"):
            size = zstandard.frame_content_size(reader.file.pread(offset, min(length, 18)))
            total += size if size >= 0 else length
        else:
            total += length
    return total


def cmd_stat(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        report = _stat(store, args.collection)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(report, indent=1, default=str))
        return 0
    info = report["storage"]
    print(f"collection   {report['collection_name']} (project {report['project']}, {report['store']})")
    print(f"rows         {info['rows']:,}" + (f" ({info['log_rows']:,} in the log, not yet in a segment)"
                                              if info["log_rows"] else ""))
    print(f"on disk      {_bytes(info['bytes_on_disk'])}: {info['segments']} segment(s) "
          f"{_bytes(info['segment_bytes'])}, raw {_bytes(info['raw_bytes'])}, ratio {_ratio(info['ratio'])}")
    print(f"primary key  {report['primary_key']}\n")
    columns = report["columns"]
    rows = [[f["field_name"], _type_name(Field.from_dict(f)), "yes" if f.get("nullable") else "no",
             ", ".join(f"{e} x{n}" for e, n in columns[f["field_name"]]["encodings"].items()) or "-",
             _bytes(columns[f["field_name"]]["stored_bytes"]), _bytes(columns[f["field_name"]]["raw_bytes"]),
             _ratio(columns[f["field_name"]]["ratio"])] for f in report["fields"]]
    _print_table(["field", "type", "nullable", "encodings (blocks)", "stored", "raw", "ratio"], rows,
                 numeric={4, 5, 6})
    if report["segments"]:
        print()
        rows = [[s["file"], f"{s['rows']:,}", f"{s['deleted']:,}", str(s["blocks"]), _cell(s["min_pk"]),
                 _cell(s["max_pk"]), _bytes(s["bytes"])] for s in report["segments"]]
        _print_table(["segment", "rows", "deleted", "blocks", "min key", "max key", "bytes"], rows,
                     numeric={1, 2, 3, 6})
    return 0


def _stat(store: Store, name: str) -> dict[str, Any]:
    engine = store.engine(name)
    columns: dict[str, dict[str, Any]] = {}
    for f in engine.schema.fields:
        encodings: dict[str, int] = {}
        stored = raw = 0
        for s in engine.segments:
            spec = s.reader.columns.get(f.field_name)
            if spec is None:
                continue  # a field added after this segment was written: its rows read as null
            for encoding, _offset, length, _crc in spec["blocks"]:
                encodings[encoding] = encodings.get(encoding, 0) + 1
                stored += length
            raw += _raw_bytes(s.reader, f.field_name)
        columns[f.field_name] = {"encodings": encodings, "stored_bytes": stored, "raw_bytes": raw,
                                 "ratio": round(raw / stored, 2) if stored else None}
    segments = [{
        "file": filenames.segment_name(s.entry.number), "rows": s.entry.rows, "deleted": s.entry.deleted,
        "blocks": s.reader.block_count, "min_pk": s.entry.min_pk, "max_pk": s.entry.max_pk,
        "bytes": _file_size(engine, filenames.segment_name(s.entry.number)),
    } for s in engine.segments]
    return {
        "collection_name": name,
        "project": store.project,
        "store": store.root,
        "primary_key": engine.schema.primary_key,
        "fields": [f.to_dict() for f in engine.schema.fields],
        "storage": _figures(engine),
        "columns": columns,
        "segments": segments,
    }


def _type_name(f: Field) -> str:
    if f.data_type is DataType.ARRAY:
        assert f.element_data_type is not None
        return f"ARRAY<{f.element_data_type.value}>[<={f.max_capacity}]"
    if f.data_type is DataType.FLOAT_VECTOR:
        return f"FLOAT_VECTOR[{f.dim}]"
    if f.data_type is DataType.VARCHAR:
        return f"VARCHAR({f.max_length})"
    return f.data_type.value


# -- head and query --------------------------------------------------------------------------------


def cmd_head(args: argparse.Namespace) -> int:
    return _print_rows(args, "", args.fields, args.rows, 0)


def cmd_query(args: argparse.Namespace) -> int:
    return _print_rows(args, args.filter, args.fields, args.limit, args.offset)


def _print_rows(args: argparse.Namespace, filter: str, fields: list[str] | None, limit: int | None,
                offset: int) -> int:
    """Stream matching rows in key order; a table's column widths come from its first TABLE_SAMPLE rows."""
    client = _reader(args)
    try:
        table = _Table(sys.stdout) if args.format == "table" else None
        # Without a filter every key in a step matches, so a small limit needs only a small step.
        step = min(16_384, max(1, offset + limit)) if limit is not None and not filter.strip() else 16_384
        skip, left = offset, limit
        for chunk in iter_chunks(client, args.collection, filter, fields, step) if left != 0 else ():
            rows = chunk.rows()
            if skip:
                rows, skip = rows[skip:], max(0, skip - len(rows))
            if left is not None:
                rows, left = rows[:left], left - min(left, len(rows))
            for row in rows:
                if table is not None:
                    table.add([_cell(v) for v in row.values()], list(row))
                else:
                    print(json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str))
            if left == 0:
                break
        if table is not None:
            table.close()
        return 0
    finally:
        client.close()


TABLE_SAMPLE = 200


class _Table:
    """Rows printed as aligned columns, sized from the first TABLE_SAMPLE rows so output can stream."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.pending: list[list[str]] = []
        self.headers: list[str] = []
        self.widths: list[int] | None = None

    def add(self, cells: list[str], headers: list[str]) -> None:
        if self.widths is not None:
            print(_line(cells, self.widths), file=self.out)
            return
        self.headers = headers
        self.pending.append(cells)
        if len(self.pending) >= TABLE_SAMPLE:
            self._start()

    def _start(self) -> None:
        rows = self.pending
        self.widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(self.headers)]
        print(_line(self.headers, self.widths), file=self.out)
        for cells in rows:
            print(_line(cells, self.widths), file=self.out)
        self.pending = []

    def close(self) -> None:
        if self.widths is None and self.pending:
            self._start()
        elif self.widths is None:
            print("(no rows)", file=sys.stderr)


# -- import and export -----------------------------------------------------------------------------


def _file_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if os.path.isdir(args.file):
        return "hf"
    fmt = FILE_FORMATS.get(os.path.splitext(args.file)[1].lower())
    if fmt is None:
        raise InvalidArgumentError(f"cannot tell the format of {args.file!r} from its name; pass --format "
                                   "(jsonl, parquet, or hf for a save_to_disk folder)")
    return fmt


def cmd_import(args: argparse.Namespace) -> int:
    fmt = _file_format(args)
    if args.split and fmt != "hf":
        raise InvalidArgumentError("--split applies to saved Hugging Face datasets only")
    if args.schema and fmt != "jsonl":
        raise InvalidArgumentError("--schema applies to JSON Lines only: Parquet and Arrow files carry their schema")
    if fmt in ("parquet", "hf") and not os.path.exists(args.file):
        raise InvalidArgumentError(f"{args.file}: no such file or folder")
    with Memora(project_id=args.project, path=args.path) as client:
        if fmt == "jsonl":
            with _progress(args, None, "rows", f"import {args.collection}") as progress:
                n = jsonl.from_jsonl(client, args.collection, args.file, primary_key=args.primary_key or "id",
                                     schema_path=args.schema, upsert=args.upsert, batch_rows=args.batch_rows,
                                     progress=progress)
        elif fmt == "parquet":
            from memora_lite.interop import parquet

            with _progress(args, parquet.parquet_rows(args.file), "rows", f"import {args.collection}") as progress:
                n = parquet.from_parquet(client, args.collection, args.file, primary_key=args.primary_key,
                                         upsert=args.upsert, batch_rows=args.batch_rows, progress=progress)
        else:
            from memora_lite.interop import hf

            dataset = hf.pick_split(hf.load_saved(args.file), args.split)
            with _progress(args, len(dataset), "rows", f"import {args.collection}") as progress:
                n = hf.from_hf(client, args.collection, dataset, primary_key=args.primary_key, upsert=args.upsert,
                               batch_rows=args.batch_rows, progress=progress)
    _say(args, f"imported {n:,} rows into {args.collection} from {args.file}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    fmt = "jsonl" if args.file == "-" and not args.format else _file_format(args)
    if fmt == "hf":
        raise InvalidArgumentError(f"{args.file} is a folder; export writes a .jsonl or .parquet file")
    if args.schema and fmt != "jsonl":
        raise InvalidArgumentError("--schema applies to JSON Lines only: Parquet files carry their schema")
    if args.file == "-" and fmt != "jsonl":
        raise InvalidArgumentError("only JSON Lines can go to stdout ('-')")
    client = _reader(args)
    try:
        total = client.nosql.describe_collection(args.collection)["row_count"] if not args.filter else None
        with _progress(args, total, "rows", f"export {args.collection}") as progress:
            if fmt == "parquet":
                from memora_lite.interop import parquet

                n = parquet.to_parquet(client, args.collection, args.file, filter=args.filter,
                                       output_fields=args.fields, batch_rows=args.batch_rows, progress=progress)
            else:
                out = sys.stdout if args.file == "-" else args.file
                n = jsonl.to_jsonl(client, args.collection, out, filter=args.filter, output_fields=args.fields,
                                   schema_path=args.schema, batch_rows=args.batch_rows, progress=progress)
    finally:
        client.close()
    if args.file != "-":
        _say(args, f"exported {n:,} rows of {args.collection} to {args.file}")
    return 0


# -- verify and compact ----------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        existing = store.names()
        names = args.collections or existing
        missing = [n for n in names if n not in existing]
        if missing:
            raise CollectionNotFoundError(f"collection '{missing[0]}' does not exist in {store.folder}; "
                                          f"collections: {', '.join(existing) or 'none'}")
        damaged = 0
        for name in names:
            problems, summary = _verify(args, store, name)
            if problems:
                damaged += 1
                print(f"{name}: DAMAGED")
                for problem in problems:
                    print(f"  {problem}")
            else:
                print(f"{name}: ok ({summary})")
    finally:
        store.close()
    _say(args, f"{len(names)} collection(s) checked, {damaged} damaged")
    return EXIT_DAMAGED if damaged else 0


def _verify(args: argparse.Namespace, store: Store, name: str) -> tuple[list[str], str]:
    """Check one collection file by file; returns the problems found and a summary line.

    Each segment has every block of every column read (CRC-checked and decoded) and
    the log every record; a damaged file is reported and the next one checked.
    Finally the collection is opened as a reader would, which also checks deletion
    vectors and replays the log.
    """
    folder = os.path.join(store.folder, name)
    try:
        manifest = Manifest.load(store.fs, folder)
    except OSError as exc:
        return [str(exc)], ""
    problems: list[str] = []
    files = [filenames.segment_name(s.number) for s in manifest.segments] + [manifest.wal]
    sizes = {f: store.fs.file_size(os.path.join(folder, f)) for f in files if store.fs.exists(os.path.join(folder, f))}
    blocks = 0
    with _progress(args, sum(sizes.values()), "B", f"verify {name}") as progress:
        for entry in manifest.segments:
            path = os.path.join(folder, filenames.segment_name(entry.number))
            try:
                blocks += _verify_segment(store.fs, path, entry.rows, progress)
            except OSError as exc:
                problems.append(str(exc) if isinstance(exc, MemoraError) else f"{path}: {exc.strerror or exc}")
        wal = os.path.join(folder, manifest.wal)
        try:
            read_records(store.fs.read(wal), wal)
            progress(sizes.get(manifest.wal, 0))
        except OSError as exc:
            problems.append(str(exc) if isinstance(exc, MemoraError) else f"{wal}: {exc.strerror or exc}")
    if problems:
        return problems, ""
    try:
        engine = CollectionEngine(store.fs, folder, name, Options(read_only=True), BlockCache(1))
    except OSError as exc:
        return [str(exc)], ""
    rows = engine.count()
    engine.close()
    return [], (f"{len(manifest.segments)} segment(s), {blocks:,} blocks, log {_bytes(sizes.get(manifest.wal, 0))}, "
                f"{rows:,} rows")


def _verify_segment(fs: Any, path: str, rows: int, progress: Callable[[int], Any]) -> int:
    reader = SegmentReader(fs, path, BlockCache(1))  # checks trailer and footer; a 1-byte cache keeps nothing
    try:
        if reader.rows != rows:
            raise CorruptionError(f"{path}: holds {reader.rows} rows but the manifest says {rows}")
        count = 0
        for name, spec in reader.columns.items():
            for block, (_encoding, _offset, length, _crc) in enumerate(spec["blocks"]):
                reader.read_block(name, block)
                progress(length)
                count += 1
        return count
    finally:
        reader.close()


def cmd_compact(args: argparse.Namespace) -> int:
    _check_store(args)
    with Memora(project_id=args.project, path=args.path) as client:
        names = args.collections or client.nosql.list_collections()
        with _progress(args, len(names), "collection", "compact") as progress:
            for name in names:
                before = client.nosql.describe_collection(name)["bytes_on_disk"]
                result = client.nosql.compact(name)
                after = client.nosql.describe_collection(name)["bytes_on_disk"]
                progress(1)
                _say(args, f"{name}: {result['segments_before']} segment(s) -> {result['segments_after']}, "
                           f"{result['rows']:,} rows, {_bytes(before)} -> {_bytes(after)}")
    return 0


# -- formatting ------------------------------------------------------------------------------------


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1f}x"


def _cell(value: Any) -> str:
    """A value for a table cell: lists shortened with their length, long text cut at CELL_WIDTH."""
    if value is None:
        return "null"
    if isinstance(value, list) and len(value) > 6:
        text = "[" + ", ".join(_cell(v) for v in value[:4]) + f", …] ({len(value)})"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    elif isinstance(value, float):
        text = f"{value:.7g}"
        text = text if any(c in text for c in ".enai") else text + ".0"  # keep 1.0 looking like a float
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def _line(cells: Sequence[str], widths: Sequence[int], numeric: Collection[int] = ()) -> str:
    parts = []
    for i, (cell, width) in enumerate(zip(cells, widths)):
        cell = cell if len(cell) <= width else cell[: width - 1] + "…"
        parts.append(cell.rjust(width) if i in numeric else cell.ljust(width))
    return "  ".join(parts).rstrip()


def _print_table(headers: list[str], rows: list[list[str]], numeric: Collection[int] = ()) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    print(_line(headers, widths, numeric))
    for row in rows:
        print(_line(row, widths, numeric))
