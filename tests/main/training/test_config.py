import json
from pathlib import Path

import pytest

from main.training.config import (
    ConfigError,
    TrainConfig,
    field_names,
    grad_accum_steps,
    load_config,
    make_config,
    save_config,
)
from main.training.engine import Runtime, deepspeed_config
from tests.paths import REPO

CONFIGS = REPO / "scripts" / "configs"


def _is_pipeline(path: Path) -> bool:
    import yaml

    return "sources" in (yaml.safe_load(path.read_text()) or {})


PRESETS = [p for p in sorted(CONFIGS.glob("*.yaml")) if not _is_pipeline(p)]
PIPELINES = [p for p in sorted(CONFIGS.glob("*.yaml")) if _is_pipeline(p)]


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_shipped_preset_loads(path):
    config = load_config(path)
    assert config.train_data and config.output_dir.startswith("data/out/train/")
    if config.strategy == "deepspeed":
        assert Path(REPO / config.deepspeed_config).is_file()
    assert grad_accum_steps(config, world_size=1) >= 1


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_shipped_pipeline_config_loads(path, monkeypatch):
    """`make demo`'s config and the GPU-scale one pass every check (the latter given a teacher endpoint)."""
    from main.flow.config import load_pipeline_config
    from main.flow.plan import train_settings

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_MODEL", "m")
    monkeypatch.chdir(REPO)
    config = load_pipeline_config(path)
    assert config.output_dir.startswith("data/out/") and config.sources
    train = train_settings(config, Path(config.output_dir))
    assert train["train_data"] == f"{config.output_dir}/dataset/train.jsonl" and train["resume"] == "auto"
    assert {p.name for p in PIPELINES} == {"demo.yaml", "codecapybara.yaml"}


def test_presets_carry_the_published_hyperparameters():
    full = load_config(CONFIGS / "codealpaca_full.yaml")
    assert (
        full.mode,
        full.lr,
        full.epochs,
        full.max_length,
        full.weight_decay,
        full.warmup_ratio,
        full.schedule,
        full.global_batch_size,
    ) == ("full", 2e-5, 3, 512, 0.0, 0.03, "cosine", 128)
    lora = load_config(CONFIGS / "alpaca_lora.yaml")
    assert (lora.lora_r, lora.lora_alpha, lora.lora_dropout, lora.lora_targets) == (8, 16, 0.05, "llama-qv")
    qlora = load_config(CONFIGS / "qlora_7b.yaml")
    assert (qlora.mode, qlora.quant_bits) == ("qlora", 4)
    assert load_config(CONFIGS / "cpu_smollm2.yaml").model == "embedded"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("ds_*.json")), ids=lambda p: p.name)
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_every_deepspeed_config_fills_its_auto_values(path, device):
    config = make_config(
        {
            "strategy": "deepspeed",
            "deepspeed_config": str(path),
            "micro_batch_size": 2,
            "global_batch_size": 16,
            "lr": 1e-4,
            "precision": "bf16",
            "max_grad_norm": 0.5,
        }
    )
    runtime = Runtime(world=2, device=__import__("torch").device(device))
    ds = deepspeed_config(config, runtime, grad_accum=grad_accum_steps(config, 2))
    assert "auto" not in json.dumps(ds)
    assert ds["train_batch_size"] == 16 == ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"] * 2
    assert ds["bf16"]["enabled"] is True and ds["fp16"]["enabled"] is False
    assert ds["optimizer"]["params"]["lr"] == 1e-4 and ds["gradient_clipping"] == 0.5
    offloaded = "offload_optimizer" in ds["zero_optimization"]
    # FusedAdam needs CUDA: a CPU run without optimizer offload uses torch's AdamW
    assert ds["optimizer"]["params"].get("torch_adam", False) is (device == "cpu" and not offloaded)
    assert ds["zero_optimization"]["stage"] in (2, 3)


def test_overrides_are_parsed_as_yaml_and_coerced(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("lr: 1\nmode: full\nval_data:\n")
    config = load_config(
        preset,
        ["lr=2e-5", "lora_targets=[q_proj, k_proj]", "packing=true", "epochs=2.0", "model=org/name", "train_data=123"],
    )
    assert config.lr == 2e-5 and isinstance(config.lr, float)
    assert config.lora_targets == ["q_proj", "k_proj"] and config.packing is True and config.epochs == 2
    assert config.mode == "full" and config.val_data == "" and config.train_data == "123"


def test_unknown_key_is_rejected_with_the_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["learning_rate=1e-4"])
    message = str(err.value)
    assert "learning_rate" in message and all(name in message for name in field_names())


@pytest.mark.parametrize(
    "override, fragment",
    [
        (["mode=adapter"], "mode='adapter'"),
        (["epochs=abc"], "epochs: expected int"),
        (["lr=0"], "lr must be > 0"),
        (["packing=1"], "packing: expected bool"),
        (["strategy=fsdp"], "mode=full"),
        (["strategy=fsdp", "mode=full", "precision=fp16"], "precision=bf16"),
        (["strategy=deepspeed"], "deepspeed_config"),
        (["mode=qlora", "quant_bits=3"], "quant_bits"),
        (["batch_tokens=100"], "batch_tokens"),
        (["oops"], "not key=value"),
    ],
)
def test_bad_values_say_what_to_change(override, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        load_config(None, override)
    assert fragment in str(err.value)


def test_grad_accum_from_global_batch():
    config = make_config({"micro_batch_size": 4, "global_batch_size": 128})
    assert grad_accum_steps(config, 1) == 32 and grad_accum_steps(config, 8) == 4
    with pytest.raises(ConfigError, match="not a multiple"):
        grad_accum_steps(config, 3)
    assert grad_accum_steps(make_config({"grad_accum": 5}), 3) == 5


def test_saved_config_loads_back_identically(tmp_path):
    config = make_config({"lora_targets": ["q_proj"], "lr": 3e-4, "val_size": 0.1})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert TrainConfig() == make_config({})
