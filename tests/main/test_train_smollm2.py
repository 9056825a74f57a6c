"""A real model learns: LoRA on the embedded SmolLM2-135M-Instruct lowers the CodeAlpaca validation loss.

Training a 135M model on CPU runs at tens of tokens per second here, so the run is as small as
still says something: the 24 shortest real CodeAlpaca rows (16 to train, 8 held out) (answers of a few tokens, which the
instruct model, untrained on the Alpaca format, predicts poorly), 4 steps of 4 on one thread (two threads on a
busy 2-core box are several times slower), then the held-out loss.
"""

import json

import pytest

from main.train import main
from main.training.metrics import read_metrics
from main.training.modeling import check_adapter


@pytest.mark.slow
def test_short_lora_run_lowers_validation_loss(smollm2, code_alpaca_2k, tmp_path):
    rows = [r for r in json.loads(code_alpaca_2k.read_text()) if r.get("output", "").strip()]
    rows.sort(key=lambda r: len(r["instruction"]) + len(r.get("input", "")) + len(r["output"]))
    (tmp_path / "short.json").write_text(json.dumps(rows[:24]))
    out = tmp_path / "run"
    assert (
        main(
            [
                f"model={smollm2}",
                f"train_data={tmp_path / 'short.json'}",
                f"output_dir={out}",
                "mode=lora",
                "lora_targets=llama-all",
                "val_size=8",
                "max_length=128",
                "micro_batch_size=4",
                "global_batch_size=4",
                "num_threads=1",
                "epochs=1",
                "lr=3e-3",
                "warmup_ratio=0",
                "schedule=constant",
                "precision=fp32",
                "device=cpu",
                "eval_every=4",
                "plot=false",
                "prompt_format=alpaca",
            ]
        )
        == 0
    )
    val = [row["val_loss"] for row in read_metrics(out / "metrics.jsonl") if row["kind"] == "val"]
    assert len(val) == 2, val  # before training (step 0) and after the 4 steps
    assert val[1] < 0.8 * val[0], val
    assert check_adapter(out / "final")["modules"] == 30 * 7  # every linear layer of the 30 blocks
