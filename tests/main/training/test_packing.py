"""main.training.packing: bins, collators, the epoch plan, and packed loss == the sum of one-by-one losses."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from data_generation.common.record import Record
from main.training.data import prepare_tokenizer, tokenize_records
from main.training.packing import (
    IGNORE_INDEX,
    batches,
    collate_packed,
    collate_padded,
    pack,
    packing_helps,
    plan_tokens,
    rows_for,
    target_loss_sum,
    useful_token_fraction,
)
from tests.tiny_models import make_tiny_llama


@dataclass(frozen=True)
class Ex:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]


def synthetic(lengths: list[int]) -> list[Ex]:
    return [Ex(tuple(range(1, n + 1)), (IGNORE_INDEX,) * (n // 2) + tuple(range(n // 2 + 1, n + 1))) for n in lengths]


_rng = random.Random(0)
LENGTHS = [_rng.randint(20, 500) for _ in range(600)]


# ---------------------------------------------------------------- bins and plans


def test_pack_uses_every_example_once_and_is_near_optimal():
    bins = pack(synthetic(LENGTHS), 512)
    assert sorted(i for b in bins for i in b) == list(range(len(LENGTHS)))
    assert all(sum(LENGTHS[i] for i in b) <= 512 for b in bins)
    assert len(bins) <= 1.03 * math.ceil(sum(LENGTHS) / 512)  # within 3 % of the lower bound
    assert bins == pack(synthetic(LENGTHS), 512)
    with pytest.raises(ValueError, match="longer than max_length"):
        pack(synthetic([10, 600]), 512)


def test_rows_for_next_fit():
    assert rows_for([3, 4, 2, 5], 7) == [[0, 1], [2, 3]]
    assert rows_for([3, 4, 2], None) == [[0, 1, 2]]


@pytest.mark.parametrize(
    "options",
    [
        dict(packing=True, batch_size=4, max_length=512),
        dict(packing=True, batch_tokens=2048, max_length=512),
        dict(packing=False, batch_size=8),
        dict(packing=False, batch_size=8, length_grouped=True),
        dict(packing=False, batch_tokens=4096, length_grouped=True),
    ],
)
def test_plan_is_a_deterministic_permutation_that_changes_with_the_epoch(options):
    examples = synthetic(LENGTHS)
    plan = batches(examples, seed=3, epoch=0, **options)
    assert sorted(i for b in plan for i in b) == list(range(len(examples)))
    assert plan == batches(examples, seed=3, epoch=0, **options)
    assert plan != batches(examples, seed=3, epoch=1, **options)
    if "batch_tokens" in options and not options["packing"]:
        assert all(len(b) * max(LENGTHS[i] for i in b) <= options["batch_tokens"] for b in plan)


def test_packed_plan_rows_are_rebuilt_by_the_collator():
    examples = synthetic(LENGTHS)
    plan = batches(examples, packing=True, batch_size=4, max_length=512, seed=0, epoch=0)
    bins = math.ceil(len(pack(examples, 512)) / 4)
    assert len(plan) == bins
    for micro in plan[:8]:
        batch = collate_packed([examples[i] for i in micro], pad_id=0, max_length=512, mask="position_ids")
        assert batch["input_ids"].shape[0] <= 4 and batch["input_ids"].shape[1] <= 512


def test_length_grouping_cuts_padding_and_puts_the_costliest_batch_first():
    examples = synthetic(LENGTHS)
    cost = lambda plan: sum(len(b) * max(LENGTHS[i] for i in b) for b in plan)  # noqa: E731
    grouped = batches(examples, batch_size=8, length_grouped=True, seed=0)
    assert cost(grouped) < 0.8 * cost(batches(examples, batch_size=8, seed=0))
    assert cost(grouped[:1]) == max(cost([b]) for b in grouped)


@pytest.mark.parametrize("packing", [True, False])
def test_plan_tokens_match_the_collated_tensors(packing):
    examples = synthetic(LENGTHS[:120])
    plan = batches(examples, batch_size=3, packing=packing, max_length=512, seed=0)
    collate = (
        (lambda exs: collate_packed(exs, 0, 512, mask="position_ids"))
        if packing
        else (lambda exs: collate_padded(exs, 0))
    )
    computed = sum(collate([examples[i] for i in micro])["input_ids"].numel() for micro in plan)
    assert plan_tokens(examples, plan, packing=packing, max_length=512) == (sum(LENGTHS[:120]), computed)


def test_packing_helps_with_skewed_lengths_only():
    # Instruction data is mostly short with a long tail (CodeAlpaca: median 110, max 613 tokens).
    rng = random.Random(1)
    skewed = [min(500, 40 + int(rng.expovariate(1 / 80))) for _ in range(600)]
    assert packing_helps(synthetic(skewed), max_length=1024, batch_size=2)
    assert not packing_helps(synthetic([256] * 200), max_length=512, batch_size=4)


def test_plan_option_errors():
    with pytest.raises(ValueError, match="exactly one"):
        batches(synthetic([5]), batch_size=1, batch_tokens=10)
    with pytest.raises(ValueError, match="max_length"):
        batches(synthetic([5]), batch_size=1, packing=True)
    with pytest.raises(ValueError, match="less than one packed row"):
        batches(synthetic([5]), batch_tokens=10, packing=True, max_length=64)


# ---------------------------------------------------------------- collators


def test_collate_packed_layout():
    a, b = Ex((5, 6, 7), (IGNORE_INDEX, 6, 7)), Ex((8, 9), (8, 9))
    batch = collate_packed([a, b], pad_id=0, max_length=None, pad_to_multiple_of=8)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 0, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9] + [IGNORE_INDEX] * 3]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2]]
    allowed = (batch["attention_mask"][0, 0] == 0).int()
    expected = torch.zeros(8, 8, dtype=torch.int)
    for start, end in ((0, 3), (3, 5), (5, 8)):
        expected[start:end, start:end] = torch.ones(end - start, end - start, dtype=torch.int).tril()
    assert torch.equal(allowed, expected)
    assert useful_token_fraction(batch) == 3 / 8
    no_mask = collate_packed([a, b], pad_id=0, mask="position_ids")
    assert "attention_mask" not in no_mask and no_mask["input_ids"].shape == (1, 5)


def test_collate_padded_layout():
    batch = collate_padded([Ex((5, 6, 7), (IGNORE_INDEX, 6, 7)), Ex((8,), (8,))], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


# ---------------------------------------------------------------- loss equivalence on a real (tiny) Llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_tiny_llama(tmp_path_factory.mktemp("tiny"), seed=1)
    tok = prepare_tokenizer(AutoTokenizer.from_pretrained(folder))
    records = [
        Record(
            f"Write function {i}. " * (1 + i % 3),
            "x = [1, 2]" if i % 2 else "",
            f"def f(x):\n    return x + {i}\n" * (1 + i % 4),
            "test",
        )
        for i in range(6)
    ]
    examples, _ = tokenize_records(records, tok, max_length=400)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors this small only pay for thread synchronisation on a busy box
    yield folder, tok, examples
    torch.set_num_threads(threads)


def one_by_one(model, examples) -> torch.Tensor:
    return sum(
        target_loss_sum(model(input_ids=torch.tensor([ex.input_ids])).logits, torch.tensor([ex.labels]))[0]
        for ex in examples
    )


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_packed_loss_and_gradients_equal_the_sum_of_single_examples(tiny, attn):
    folder, tok, examples = tiny
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation=attn)
    alone = one_by_one(model, examples)
    alone.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    batch = collate_packed(examples, tok.pad_token_id, max_length=700)
    assert batch["input_ids"].shape[0] < len(examples)  # several examples really share a row
    packed, n = target_loss_sum(model(**batch).logits, batch["labels"])
    assert n == sum(sum(t != IGNORE_INDEX for t in ex.labels) for ex in examples)
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-4)
    packed.backward()
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)
    # Control: the same row with plain causal attention (crossing examples) gives another loss.
    crossing = target_loss_sum(model(input_ids=batch["input_ids"]).logits, batch["labels"])[0]
    assert not torch.allclose(crossing, alone, rtol=1e-5, atol=1e-4)


def test_position_ids_only_packing_needs_use_cache_false(tiny):
    folder, tok, examples = tiny
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    batch = collate_packed(examples, tok.pad_token_id, max_length=700, mask="position_ids")
    with torch.no_grad():
        alone = one_by_one(model, examples)
        packed = target_loss_sum(model(**batch, use_cache=False).logits, batch["labels"])[0]
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-4)


def test_padded_batch_loss_equals_the_sum_of_single_examples(tiny):
    folder, tok, examples = tiny
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    with torch.no_grad():
        batch = collate_padded(examples, tok.pad_token_id)
        padded = target_loss_sum(model(**batch).logits, batch["labels"])[0]
        torch.testing.assert_close(padded, one_by_one(model, examples), rtol=1e-5, atol=1e-4)


def test_all_masked_labels_give_zero_loss_not_nan(tiny):
    folder, tok, examples = tiny
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")
    masked = Ex(examples[0].input_ids, (IGNORE_INDEX,) * len(examples[0].input_ids))
    loss, n = target_loss_sum(model(**collate_packed([masked], tok.pad_token_id)).logits, torch.tensor([masked.labels]))
    assert n == 0 and loss.item() == 0.0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        batch = collate_packed([masked, examples[1]], tok.pad_token_id)
        mixed = target_loss_sum(model(**batch).logits, batch["labels"])[0]
        torch.testing.assert_close(mixed, one_by_one(model, examples[1:2]), rtol=1e-5, atol=1e-4)
