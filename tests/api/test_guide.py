"""The guide's whole flow: one insert per row for all of SQuAD-train's 87,599 rows, then reading it back.

Slips in the guide (a collection name it never created, fields it never stored)
get clear errors; with the names corrected every value comes back exactly, live
and after reopening.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from memora_lite import CollectionNotFoundError, FieldNotFoundError, Memora
from memora_lite.testing.squad import SQUAD_TRAIN_ROWS, squad_columns, squad_rows

FIELDS = ["input_ids", "attention_mask", "start_token", "end_token"]


class TokenizedDataset:
    """The guide's dataset, minus torch: it reads ``item[0]`` .. ``item[3]``."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        item = self.data[idx]
        return {"input_ids": item[0], "attention_mask": item[1], "start_positions": item[2],
                "end_positions": item[3]}


def _read_all(client: Memora, batch_size: int = 50) -> dict[str, np.ndarray]:
    def fetch_batch(batch_size: int, offset: int):
        result = client.nosql.query(
            collection_name="finetune_data",
            filter=f"{offset} <= id < {offset + batch_size}",
            output_fields=FIELDS,
        )
        return result["data"]

    out: dict[str, list] = {k: [] for k in ("input_ids", "attention_mask", "start_positions", "end_positions")}
    offset = 0
    while True:
        data_batch = fetch_batch(batch_size, offset)
        if not data_batch:
            break
        dataset = TokenizedDataset(data_batch)
        for i in range(len(dataset)):
            for k, v in dataset[i].items():
                out[k].append(v)
        offset += batch_size
    return {k: np.array(v) for k, v in out.items()}


def test_guide_flow_full_size_live_and_after_reopen(tmp_path: os.PathLike[str]) -> None:
    n = SQUAD_TRAIN_ROWS
    path = os.path.join(tmp_path, "store")
    client = Memora(project_id="YOUR_PROJECT", api_key="YOUR_API_KEY", path=path)
    for row in squad_rows(n):
        client.nosql.insert(collection_name="finetune_data", data=row)
    expected = squad_columns(n)

    with pytest.raises(CollectionNotFoundError, match="did you mean 'finetune_data'"):
        client.nosql.query(collection_name="finetuning_data", filter="0 <= id < 50", output_fields=FIELDS)
    with pytest.raises(FieldNotFoundError, match="did you mean 'start_token'"):
        client.nosql.query(collection_name="finetune_data", filter="0 <= id < 50",
                           output_fields=["input_ids", "attention_mask", "start_positions", "end_positions"])

    for attempt in ("live", "reopened"):
        got = _read_all(client)
        np.testing.assert_array_equal(got["input_ids"], expected["input_ids"])
        np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"])
        np.testing.assert_array_equal(got["start_positions"], expected["start_token"])
        np.testing.assert_array_equal(got["end_positions"], expected["end_token"])
        if attempt == "live":
            client.close()
            client = Memora(project_id="YOUR_PROJECT", path=path)
    assert client.nosql.describe_collection("finetune_data")["row_count"] == n
    client.close()
