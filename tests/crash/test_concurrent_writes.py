"""One client shared by threads (README: "a client may be shared between threads").

One-row inserts take a fast path that checks the row against the schema; another
thread's insert may grow that schema (widen an int type, add a field) at the same
time. Every row must read back as written, now and after reopening.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from memora_lite import Memora

GROWTHS = 25


def test_one_row_inserts_racing_schema_growth_read_back_as_written(
    tmp_path: os.PathLike[str], record_property: Callable[[str, object], None]
) -> None:
    path = os.path.join(tmp_path, "s")
    client = Memora(path=path)
    db = client.nosql
    db.insert("c", {"id": 0, "t": [1, 2], "x": 1})  # t is inferred as int8
    errors: list[str] = []

    def one_row_writer(t: int) -> None:
        try:
            for i in range(800):
                key = 1 + t * 100_000 + i
                db.insert("c", {"id": key, "t": [key % 100, 7], "x": 1})
        except Exception as exc:
            errors.append(f"writer {t}: {exc!r}")

    def grower() -> None:
        try:
            for j in range(GROWTHS):  # each call widens t or adds a field
                db.insert("c", [{"id": 10**8 + j, "t": [2 ** (7 + j % 50)], "x": 1, f"f{j}": j}])
        except Exception as exc:
            errors.append(f"grower: {exc!r}")

    threads = [threading.Thread(target=one_row_writer, args=(t,)) for t in range(3)]
    threads.append(threading.Thread(target=grower))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    def wrong_rows(c: Memora) -> tuple[int, int]:
        rows = c.nosql.query("c", filter="id < 100000000", output_fields=["t", "x"])["data"]
        return len(rows), sum(1 for r in rows if r["t"] != ([1, 2] if r["id"] == 0 else [r["id"] % 100, 7]))

    try:
        count, wrong = wrong_rows(client)
        client.close()
        with Memora(path=path) as again:
            assert wrong_rows(again) == (count, wrong)
        outcome = f"{count} rows, {wrong} read back wrong"
    except Exception as exc:
        outcome = f"the store broke: {type(exc).__name__}: {str(exc)[:200]}"
        wrong = -1
    record_property("figure", f"threads: 3 one-row writers racing {GROWTHS} schema growths: {outcome}; "
                              f"{len(errors)} writer errors")
    assert not errors, errors[:3]
    assert wrong == 0, outcome
    assert count == 1 + 3 * 800
