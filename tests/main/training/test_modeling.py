import json

import pytest
import torch

from main.merge_lora import main as merge_main
from main.training.config import make_config
from main.training.modeling import (
    LORA_PRESETS,
    AdapterError,
    check_adapter,
    count_lora_modules,
    load_model,
    load_tokenizer,
    lora_target_modules,
    save_adapter,
)
from tests.tiny_models import make_tiny_llama

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "model", seed=3)


def _ids(seed=0):
    return torch.randint(3, 300, (2, 12), generator=torch.Generator().manual_seed(seed))


def _lora(tiny, **values):
    config = make_config({"mode": "lora", "precision": "fp32", "lora_dropout": 0.0, **values})
    model = load_model(config, tiny, CPU)
    torch.manual_seed(1)
    with torch.no_grad():  # peft starts lora_B at zero (a no-op adapter): make the adapter matter
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    return model.eval()


def test_lora_save_load_merge_round_trip(tiny, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = _lora(tiny)
    ids = _ids()
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(str(tiny)).eval()(input_ids=ids).logits
    assert not torch.allclose(adapted, base, atol=1e-4)  # the adapter changes the output

    save_adapter(model, tmp_path / "adapter")
    summary = check_adapter(tmp_path / "adapter", expected_modules=2 * 2)  # 2 layers x (q_proj, v_proj)
    assert summary["modules"] == 4 and summary["r"] == 8 and summary["bytes"] > 1000

    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny)), str(tmp_path / "adapter"))
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(input_ids=ids).logits, adapted)

    from data_generation.common.models import TRAINING_INFO_FILE
    from data_generation.common.provenance import folder_sha256

    lineage = {"prompt_format": "chat", "weights_sha256": folder_sha256(tmp_path / "adapter")}
    (tmp_path / "adapter" / TRAINING_INFO_FILE).write_text(json.dumps(lineage))  # as main.train writes it
    assert (
        merge_main(["--adapter", str(tmp_path / "adapter"), "--output", str(tmp_path / "merged"), "--base", str(tiny)])
        == 0
    )
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged")).eval()
    assert not any("lora" in name for name in merged.state_dict())  # standalone: plain Llama weights
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, adapted, atol=1e-5, rtol=1e-5)
    info = json.loads((tmp_path / "merged" / "merge_info.json").read_text())
    assert info["modules"] == 4 and (tmp_path / "merged" / "tokenizer.json").is_file()
    carried = json.loads((tmp_path / "merged" / TRAINING_INFO_FILE).read_text())  # the lineage, re-hashed
    assert carried["prompt_format"] == "chat" and carried["merged_from_adapter_sha256"] == lineage["weights_sha256"]
    assert carried["weights_sha256"] == folder_sha256(tmp_path / "merged", exclude=(TRAINING_INFO_FILE,))


def test_empty_adapter_is_refused(tiny, tmp_path):
    """alpaca-lora's 443-byte adapter: an overridden state_dict made peft save no tensor at all."""
    model = _lora(tiny)
    with pytest.raises(AdapterError, match="0 lora_A and 0 lora_B"):
        save_adapter(model, tmp_path / "empty", state_dict={"unrelated.weight": torch.zeros(1)})
    partial = {k: v for k, v in model.state_dict().items() if "layers.0." in k}
    with pytest.raises(AdapterError, match="2 adapted modules saved, the model has 4"):
        save_adapter(model, tmp_path / "partial", state_dict=partial)
    with pytest.raises(AdapterError, match="missing"):
        check_adapter(tmp_path / "nowhere")


def test_lora_presets_and_errors(tiny):
    assert lora_target_modules("llama-qv") == ["q_proj", "v_proj"] == LORA_PRESETS["llama-qv"]
    assert lora_target_modules(["o_proj"]) == ["o_proj"]
    with pytest.raises(ValueError, match="preset"):
        lora_target_modules("llama-everything")
    assert count_lora_modules(_lora(tiny, lora_targets="llama-all")) == 2 * 7
    with pytest.raises(ValueError):  # peft: the target names match nothing in a Llama
        _lora(tiny, lora_targets=["query_key_value"])


def test_tokenizer_gets_a_pad_distinct_from_eos(tiny):
    tokenizer = load_tokenizer(tiny)
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id


@pytest.fixture(scope="module")
def tiny64(tmp_path_factory):
    # bitsandbytes 0.50 on AVX512-BF16 CPUs repacks 4-bit weights for a faster kernel on the first
    # eval-mode forward, which fails when in_features (32) is below its 64-value block; real models
    # (hidden >= 576) are fine, so the tiny model just gets hidden 64.
    return make_tiny_llama(tmp_path_factory.mktemp("tiny64") / "model", seed=3, hidden_size=64)


@pytest.mark.parametrize("bits", [4, 8])
def test_qlora_trains_lora_on_a_quantised_base_on_cpu(tiny64, tmp_path, bits):
    """bitsandbytes 0.50 quantises and runs 4-bit NF4 and 8-bit layers on CPU (slow, but real)."""
    import bitsandbytes as bnb

    tiny = tiny64
    config = make_config({"mode": "qlora", "quant_bits": bits, "precision": "fp32", "lora_dropout": 0.0})
    model = load_model(config, tiny, CPU)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer
    assert isinstance(layer, bnb.nn.Linear4bit if bits == 4 else bnb.nn.Linear8bitLt)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = _ids()
    for _ in range(2):  # lora_B starts at 0: the second step moves lora_A too
        loss = model(input_ids=ids, labels=ids).loss
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, trainable[n])]
    assert len(changed) == len(trainable)
    save_adapter(model, tmp_path / "qlora")
    assert check_adapter(tmp_path / "qlora")["modules"] == 4
