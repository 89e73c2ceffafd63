"""The memora-lite command line: every command on a real store folder, exit codes and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memora_lite import Memora
from memora_lite.cli import main
from memora_lite.testing.squad import squad_columns

ROWS = 3_000


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store with a token collection in two segments plus a log tail, and a small mixed one."""
    path = str(tmp_path / "store")
    with Memora(path=path, flush_bytes=256 << 10) as client:
        client.nosql.insert(collection_name="squad", data=squad_columns(ROWS, seq_len=64))
        client.nosql.delete(collection_name="squad", filter="id < 10")
        client.nosql.insert(collection_name="notes", data=[
            {"id": i, "title": f"note {i}", "meta": {"n": i}, "score": i / 4} for i in range(5)])
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ls_lists_rows_bytes_and_compression(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--path", store, "ls", "--format", "json")
    assert code == 0
    listing = {c["collection"]: c for c in json.loads(out)}
    assert sorted(listing) == ["notes", "squad"]
    squad = listing["squad"]
    assert squad["rows"] == ROWS - 10 and squad["segments"] >= 1
    assert squad["raw_bytes"] > squad["segment_bytes"] > 0 and squad["ratio"] > 2
    code, out, _ = run(capsys, "ls", "--path", store)  # store options also go after the command
    assert code == 0 and out.splitlines()[0].split() == ["collection", "rows", "segments", "on", "disk", "raw",
                                                          "ratio"]
    assert "2,990" in out


def test_stat_shows_schema_segments_and_encodings(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--path", store, "stat", "squad", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["primary_key"] == "id"
    assert [f["field_name"] for f in report["fields"]] == ["id", "input_ids", "attention_mask", "start_token",
                                                           "end_token"]
    assert set(report["columns"]["input_ids"]["encodings"]) == {"tokens1"}
    assert sum(s["rows"] for s in report["segments"]) + report["storage"]["log_rows"] == ROWS
    assert sum(s["deleted"] for s in report["segments"]) + report["storage"]["log_rows"] >= 10
    code, out, _ = run(capsys, "--path", store, "stat", "squad")
    assert code == 0 and "tokens1 x" in out and "ARRAY<INT16>" in out and "segment" in out


def test_head_and_query_print_rows_in_key_order(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--path", store, "head", "notes", "-n", "2", "--format", "json")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id": 0, "title": "note 0", "meta": {"n": 0}, "score": 0.0},
        {"id": 1, "title": "note 1", "meta": {"n": 1}, "score": 0.25}]
    code, out, _ = run(capsys, "--path", store, "query", "squad", "--filter", "id >= 100 and start_token > 0",
                       "--fields", "start_token", "--offset", "2", "--limit", "3", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    cols = squad_columns(ROWS, seq_len=64)
    want = [i for i in range(100, ROWS) if cols["start_token"][i] > 0][2:5]
    assert code == 0 and [r["id"] for r in rows] == want and set(rows[0]) == {"id", "start_token"}
    code, out, _ = run(capsys, "--path", store, "head", "squad", "-n", "3")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:2] == ["id", "input_ids"] and len(lines) == 4
    assert "…] (64)" in lines[1]  # long arrays are shortened, with their length


def test_export_and_import_round_trip_through_parquet(store: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow")
    path = str(tmp_path / "squad.parquet")
    code, out, err = run(capsys, "--path", store, "export", "squad", path)
    assert code == 0 and out == f"exported {ROWS - 10:,} rows of squad to {path}\n" and err == ""
    code, out, _ = run(capsys, "--path", store, "import", "copy", path)
    assert code == 0 and "imported 2,990 rows into copy" in out
    with Memora(path=store, read_only=True) as client:
        assert _same(client, "squad", "copy")


def test_export_and_import_round_trip_through_json_lines(store: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    rows, schema = str(tmp_path / "notes.jsonl"), str(tmp_path / "notes.schema.json")
    assert run(capsys, "--path", store, "export", "notes", rows, "--schema", schema)[0] == 0
    assert run(capsys, "--path", store, "-q", "import", "copy", rows, "--schema", schema) == (0, "", "")
    with Memora(path=store, read_only=True) as client:
        assert _same(client, "notes", "copy")
    code, out, _ = run(capsys, "--path", store, "export", "notes", "-", "--filter", "id == 4")
    assert code == 0 and json.loads(out) == {"id": 4, "title": "note 4", "meta": {"n": 4}, "score": 1.0}


def test_import_of_a_saved_hugging_face_dataset(store: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    datasets = pytest.importorskip("datasets")
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"id": [1, 2], "text": ["a", "b"]}),
                          "test": datasets.Dataset.from_dict({"id": [3], "text": ["c"]})}).save_to_disk(str(saved))
    code, _, err = run(capsys, "--path", store, "import", "hf", str(saved))
    assert code == 2 and "--split" in err
    code, out, _ = run(capsys, "--path", store, "import", "hf", str(saved), "--split", "train")
    assert code == 0 and "imported 2 rows" in out


def test_verify_passes_a_sound_store_and_names_each_damaged_file(store: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--path", store, "verify")
    assert code == 0 and "notes: ok" in out and "squad: ok" in out and "0 damaged" in out
    folder = Path(store) / "default" / "squad"
    segment = sorted(folder.glob("seg-*.mls"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside a column block: only reading that block notices
    segment.write_bytes(bytes(data))
    wal = next(folder.glob("wal-*.log"))
    log = bytearray(wal.read_bytes())
    log[len(log) // 2] ^= 0xFF
    wal.write_bytes(bytes(log))
    code, out, _ = run(capsys, "--path", store, "verify")
    assert code == 1
    assert "squad: DAMAGED" in out and "notes: ok" in out
    assert f"{segment}:" in out and "checksum" in out and f"{wal}:" in out
    code, out, _ = run(capsys, "--path", store, "verify", "notes")
    assert code == 0


def test_compact_merges_segments_and_keeps_rows(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--path", store, "compact", "squad")
    assert code == 0 and "-> 1" in out and "2,990 rows" in out
    with Memora(path=store, read_only=True) as client:
        info = client.nosql.describe_collection("squad")
        assert info["segments"] == 1 and info["row_count"] == ROWS - 10


def test_errors_exit_2_with_one_clear_line(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--path", str(tmp_path / "nowhere"), "ls")
    assert code == 2 and err.startswith("memora-lite: error: no memora_lite store at")
    code, _, err = run(capsys, "--path", store, "stat", "squid")
    assert code == 2 and "did you mean 'squad'" in err
    code, _, err = run(capsys, "--path", store, "query", "squad", "--filter", "id >")
    assert code == 2 and "at position" in err and "id >" in err
    code, _, err = run(capsys, "--path", store, "import", "x", str(tmp_path / "data.csv"))
    assert code == 2 and "cannot tell the format" in err
    code, _, err = run(capsys, "--path", store, "import", "x", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "cannot read" in err
    code, _, err = run(capsys, "--path", store, "verify", "nope")
    assert code == 2 and "does not exist" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--path", store, "head", "squad", "-n", "-3"])
    assert exit_info.value.code == 2
    assert "not a count" in capsys.readouterr().err


def test_a_writer_in_another_client_blocks_compact_but_not_reads(store: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with Memora(path=store) as writer:
        writer.nosql.insert(collection_name="notes", data={"id": 99, "title": "new", "meta": None, "score": 0.0})
        code, out, _ = run(capsys, "--path", store, "query", "notes", "--filter", "id == 99", "--format", "json")
        assert code == 0 and json.loads(out)["title"] == "new"  # readers replay the writer's log
        code, _, err = run(capsys, "--path", store, "compact")
        assert code == 2 and err.startswith("memora-lite: error:") and store in err


def test_python_dash_m_runs_the_same_command_line(store: str) -> None:
    done = subprocess.run([sys.executable, "-m", "memora_lite", "--help"], capture_output=True, text=True,
                          check=False, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0 and "examples:" in done.stdout and "verify" in done.stdout
    done = subprocess.run([sys.executable, "-m", "memora_lite", "--path", store, "stat", "nope"],
                          capture_output=True, text=True, check=False,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 2 and done.stderr.startswith("memora-lite: error:") and done.stdout == ""


def _same(client: Memora, a: str, b: str) -> bool:
    info_a, info_b = client.nosql.describe_collection(a), client.nosql.describe_collection(b)
    rows_a = [dict(r) for r in client.nosql.query(collection_name=a)["data"]]
    rows_b = [dict(r) for r in client.nosql.query(collection_name=b)["data"]]
    return bool(info_a["fields"] == info_b["fields"] and rows_a == rows_b)
