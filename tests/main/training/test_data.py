"""main.training.data: loading, the held-out split, the pad-token policy, prompt masking, EOS and truncation."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from data_generation.common.io import DataError, write_hf_dataset, write_records
from data_generation.common.prompts import encode_prompt, render_prompt
from data_generation.common.record import Record
from main.training.data import (
    ADDED_PAD_TOKEN,
    load_records,
    needs_resize,
    prepare_tokenizer,
    prompt_key,
    remove_overlap,
    split_train_val,
    tokenize_records,
)
from main.training.packing import IGNORE_INDEX
from tests.tiny_models import make_tiny_tokenizer


def rec(instruction: str, output: str, input: str = "") -> Record:
    return Record(instruction=instruction, input=input, output=output, source="test")


RECORDS = [
    rec(f"Write function {i} in Python.", f"def f{i}(x):\n    return x * {i}\n", "x = 3" if i % 2 else "")
    for i in range(40)
]


def bare_tokenizer(specials: list[str], template: str | None = None, **roles: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE with exactly these special tokens and roles (eos_token=..., unk_token=...).

    `template` (e.g. "<s> $A </s>") is what encoding with special tokens wraps the text in."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["def f(x): return x", "hello world"], trainer=trainer)
    if template:
        tok.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(t, tok.token_to_id(t)) for t in specials if t in template]
        )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **roles)


# ---------------------------------------------------------------- pad policy


def test_own_pad_distinct_from_eos_is_kept():
    tok = make_tiny_tokenizer()
    before = (tok.pad_token, len(tok))
    assert prepare_tokenizer(tok) is tok and (tok.pad_token, len(tok)) == before


def test_pad_equal_to_eos_is_replaced_by_unk_without_growing_the_vocabulary():
    # SmolLM2-Instruct ships pad == eos == <|im_end|>; its unk <|endoftext|> becomes the pad.
    tok = bare_tokenizer(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        unk_token="<|endoftext|>",
        pad_token="<|im_end|>",
    )
    size = len(tok)
    prepare_tokenizer(tok)
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id != tok.eos_token_id and len(tok) == size


def test_llama3_style_vocabulary_reuses_a_reserved_token_pad_named_first():
    specials = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>",
    ]
    tok = bare_tokenizer(specials, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")
    size = len(tok)
    prepare_tokenizer(tok)
    assert tok.pad_token == "<|finetune_right_pad_id|>" and len(tok) == size
    tok = bare_tokenizer(specials[:4], bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")
    prepare_tokenizer(tok)
    assert tok.pad_token == "<|reserved_special_token_0|>"


def test_pad_is_added_only_when_nothing_fits_and_then_the_model_must_grow():
    tok = bare_tokenizer(["<s>", "</s>"], bos_token="<s>", eos_token="</s>")
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
        )
    )
    assert not needs_resize(tok, model)
    prepare_tokenizer(tok)
    assert tok.pad_token == ADDED_PAD_TOKEN and tok.pad_token_id not in (tok.eos_token_id, tok.bos_token_id)
    assert needs_resize(tok, model)


def test_tokenizer_without_eos_is_refused():
    with pytest.raises(ValueError, match="no EOS"):
        prepare_tokenizer(bare_tokenizer(["<s>"], bos_token="<s>"))


# ---------------------------------------------------------------- tokenizing


def test_prompt_masked_target_and_eos_learned():
    tok = prepare_tokenizer(make_tiny_tokenizer())
    examples, stats = tokenize_records(RECORDS, tok, max_length=1024)
    assert stats.examples == len(RECORDS) and stats.truncated == stats.dropped_all_masked == 0
    for record, ex in zip(RECORDS, examples):
        prompt = encode_prompt(tok, render_prompt(record.instruction, record.input))
        assert list(ex.input_ids[: len(prompt)]) == prompt  # what generation feeds is a prefix of training
        assert ex.labels[: len(prompt)] == (IGNORE_INDEX,) * len(prompt)
        target = ex.labels[len(prompt) :]
        assert target == ex.input_ids[len(prompt) :] and target[-1] == tok.eos_token_id
        assert tok.decode(target[:-1]) == record.output
    assert stats.tokens == sum(len(e.input_ids) for e in examples)
    assert stats.target_tokens == sum(sum(t != IGNORE_INDEX for t in e.labels) for e in examples)


def test_eos_stays_a_target_when_the_shipped_pad_was_eos():
    tok = bare_tokenizer(
        ["<|endoftext|>", "<|im_end|>"], eos_token="<|im_end|>", unk_token="<|endoftext|>", pad_token="<|im_end|>"
    )
    examples, _ = tokenize_records(RECORDS[:3], prepare_tokenizer(tok), max_length=1024)
    assert all(ex.labels[-1] == tok.eos_token_id != tok.pad_token_id for ex in examples)


def test_llama_style_bos_is_kept_and_an_auto_eos_never_ends_the_prompt():
    # Llama tokenizers prefix BOS; some checkpoints also set add_eos_token, which must not end the prompt.
    tok = bare_tokenizer(
        ["<unk>", "<s>", "</s>"], template="<s> $A </s>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    prepare_tokenizer(tok)
    assert tok.pad_token == "<unk>"
    (ex,), _ = tokenize_records(RECORDS[:1], tok, max_length=1024)
    prompt = encode_prompt(tok, render_prompt(RECORDS[0].instruction))
    assert prompt[0] == tok.bos_token_id and prompt[-1] != tok.eos_token_id
    assert ex.input_ids.count(tok.eos_token_id) == 1 and ex.labels[-1] == tok.eos_token_id
    assert ex.input_ids.count(tok.bos_token_id) == 1


def test_truncation_cuts_the_target_and_is_counted():
    tok = prepare_tokenizer(make_tiny_tokenizer())
    long = rec("Explain.", "word " * 300)
    prompt_len = len(encode_prompt(tok, render_prompt(long.instruction)))
    examples, stats = tokenize_records([long], tok, max_length=prompt_len + 10)
    assert stats.truncated == 1 and stats.examples == 1
    cut = examples[0]
    assert len(cut.input_ids) == prompt_len + 10 and cut.labels[-1] != tok.eos_token_id
    assert stats.longest > prompt_len + 10


def test_example_whose_prompt_fills_max_length_is_dropped_and_counted():
    tok = prepare_tokenizer(make_tiny_tokenizer())
    examples, stats = tokenize_records([rec("Explain. " * 200, "ok"), RECORDS[1]], tok, max_length=300)
    assert stats.dropped_all_masked == 1 and stats.truncated == 1 and stats.examples == len(examples) == 1
    assert stats.to_dict()["dropped_all_masked"] == 1


def test_real_code_alpaca_every_example_ends_with_eos(code_alpaca_2k):
    tok = prepare_tokenizer(make_tiny_tokenizer())
    records = load_records(str(code_alpaca_2k), skip_invalid=True)
    examples, stats = tokenize_records(records, tok, max_length=4096)
    assert len(records) == stats.examples == 2015 and stats.truncated == 0
    assert all(ex.labels[-1] == tok.eos_token_id and ex.labels[0] == IGNORE_INDEX for ex in examples)
    assert 0 < stats.target_tokens < stats.tokens


# ---------------------------------------------------------------- loading


@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.parquet"])
def test_load_records_from_every_file_format(tmp_path, name):
    write_records(RECORDS[:5], tmp_path / name)
    assert [r.id for r in load_records(str(tmp_path / name))] == [r.id for r in RECORDS[:5]]


def test_load_records_from_a_save_to_disk_folder_with_split(tmp_path):
    write_hf_dataset({"train": RECORDS[:4], "validation": RECORDS[4:6]}, tmp_path / "hf")
    assert [r.id for r in load_records(str(tmp_path / "hf"), split="validation")] == [r.id for r in RECORDS[4:6]]


def test_bad_row_names_file_and_line_or_is_skipped(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [r.to_dict() for r in RECORDS[:2]] + [{"instruction": "x", "output": ""}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"d\.jsonl:3: .*empty_output"):
        load_records(str(path))
    assert len(load_records(str(path), skip_invalid=True)) == 2
    with pytest.raises(DataError, match="no such file"):
        load_records(str(tmp_path / "missing.jsonl"))


# ---------------------------------------------------------------- split


def test_split_is_deterministic_disjoint_and_deduplicated():
    same_question = rec(RECORDS[0].instruction.upper(), "another answer", RECORDS[0].input)
    records = RECORDS + [RECORDS[3], same_question]
    train, val = split_train_val(records, 0.25, seed=1)
    assert (train, val) == split_train_val(records, 0.25, seed=1)
    assert len(train) + len(val) == len(RECORDS) + 1  # the exact duplicate is gone
    assert {r.id for r in train}.isdisjoint(r.id for r in val)
    assert {prompt_key(r) for r in train}.isdisjoint(prompt_key(r) for r in val)
    assert 10 <= len(val) <= 12
    assert split_train_val(records, 0.25, seed=2)[1] != val


def test_split_by_count_and_stable_when_records_are_added():
    _, val_all = split_train_val(RECORDS, 8, seed=0)
    first = {r.id for r in RECORDS[:20]}
    in_first = [r for r in val_all if r.id in first]
    _, val_first = split_train_val(RECORDS[:20], len(in_first), seed=0)
    assert len(val_all) == 8 and val_first == in_first  # records added later never move these
    assert split_train_val(RECORDS, 0, seed=0) == (RECORDS, [])
    for bad in (-1, len(RECORDS), 2.5):
        with pytest.raises(ValueError, match="val_size"):
            split_train_val(RECORDS, bad, seed=0)


def test_separate_validation_file_loses_rows_seen_in_training():
    val = [RECORDS[0], rec(RECORDS[1].instruction, "different answer", RECORDS[1].input), rec("New task", "ok")]
    kept, removed = remove_overlap(RECORDS[:5], val)
    assert removed == 2 and [r.instruction for r in kept] == ["New task"]
