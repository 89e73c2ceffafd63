"""The guide's flow on memora_lite: store SQuAD-shaped rows one insert at a time, read them back in batches.

Rows are generated offline (``memora_lite.testing.squad``: 384-token question +
context pairs, Zipf token ids, runs of rows sharing a context), stored with one
``client.nosql.insert`` per row exactly as the guide does, then read back with the
guide's ``fetch_batch`` (50-row id ranges) into its ``TokenizedDataset``. Every
value is checked against what was inserted, after reopening the store.

    python examples/squad_store_and_read.py               # 87,599 rows, like SQuAD-train
    python examples/squad_store_and_read.py --rows 5000 --path /tmp/store
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np
from tqdm import tqdm

from memora_lite import BACKEND, Memora
from memora_lite.testing.squad import SQUAD_TRAIN_ROWS, squad_columns, squad_rows

FIELDS = ["input_ids", "attention_mask", "start_token", "end_token"]


class TokenizedDataset:
    """The guide's dataset: reads ``item[0]`` .. ``item[3]`` of each fetched row.

    (The guide converts each to ``torch.tensor``; this example stays torch-free.)
    """

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        item = self.data[idx]
        return {"input_ids": item[0], "attention_mask": item[1], "start_positions": item[2], "end_positions": item[3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=SQUAD_TRAIN_ROWS, help="rows to store (default: %(default)s)")
    parser.add_argument("--path", help="store folder (default: a temporary folder, removed at the end)")
    parser.add_argument("--batch-size", type=int, default=50, help="rows per fetch_batch (default: %(default)s)")
    args = parser.parse_args()
    path = args.path or tempfile.mkdtemp(prefix="memora_lite_")
    print(f"memora_lite backend: {BACKEND}; store: {path}")

    client = Memora(project_id="YOUR_PROJECT", api_key="YOUR_API_KEY", path=path)
    insert_s = 0.0  # time inside insert calls only, not making the rows
    for row in tqdm(squad_rows(args.rows), total=args.rows, desc="insert", unit="row", mininterval=1):
        start = time.perf_counter()
        client.nosql.insert(collection_name="finetune_data", data=row)
        insert_s += time.perf_counter() - start
    client.close()

    client = Memora(project_id="YOUR_PROJECT", api_key="YOUR_API_KEY", path=path)
    expected = squad_columns(args.rows)

    def fetch_batch(batch_size: int, offset: int):
        result = client.nosql.query(
            collection_name="finetune_data",
            filter=f"{offset} <= id < {offset + batch_size}",
            output_fields=FIELDS,
        )
        return result["data"]

    start = time.perf_counter()
    offset, seen = 0, 0
    progress = tqdm(total=args.rows, desc="read", unit="row", mininterval=1)
    while True:
        data_batch = fetch_batch(args.batch_size, offset)
        if not data_batch:
            break
        dataset = TokenizedDataset(data_batch)
        for i in range(len(dataset)):
            sample = dataset[i]
            row = offset + i
            assert sample["input_ids"] == expected["input_ids"][row].tolist(), f"row {row} input_ids differ"
            assert sample["attention_mask"] == expected["attention_mask"][row].tolist()
            assert sample["start_positions"] == expected["start_token"][row]
            assert sample["end_positions"] == expected["end_token"][row]
        seen += len(dataset)
        progress.update(len(dataset))
        offset += args.batch_size
    progress.close()
    read_s = time.perf_counter() - start
    info = client.nosql.describe_collection("finetune_data")
    client.close()
    if not args.path:
        shutil.rmtree(path)

    assert seen == args.rows, f"read {seen} rows, stored {args.rows}"
    per_row = info["bytes_on_disk"] / args.rows
    raw = expected["input_ids"].astype(np.int32).nbytes + expected["attention_mask"].astype(np.int8).nbytes
    print(f"stored {args.rows:,} rows with one insert per call: {args.rows / insert_s:,.0f} rows/s")
    print(f"read them back in {args.batch_size}-row id ranges (checked every value): {seen / read_s:,.0f} rows/s")
    print(f"on disk: {info['bytes_on_disk']:,} bytes = {per_row:,.1f} bytes/row "
          f"({raw / args.rows:,.0f} bytes/row as int32 ids + int8 mask)")
    print("every value matched")


if __name__ == "__main__":
    main()
