"""Dataset files: readers that point at file:line on bad input, writers that never leave partial output.

Formats (all readable, all writable):
- Alpaca JSON: a JSON list of {instruction, input, output}, as the seeds publish it.
- JSONL: one full record (with provenance) per line.
- Parquet / Hugging Face `save_to_disk` folder: full records, `meta` stored as a JSON string
  (sources have different meta shapes, which Arrow cannot put in one column type).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from data_generation.common.record import Record, RowError, record_from_row


class DataError(Exception):
    """Bad input that stops the run: the message names the file and the line (or row)."""

    def __init__(self, path: str | os.PathLike, where: str | int | None, message: str) -> None:
        location = f"{path}:{where}" if where is not None else str(path)
        super().__init__(f"{location}: {message}")
        self.path, self.where = str(path), where


# ---------------------------------------------------------------- reading


def _read_text(path: Path, allow_empty: bool = False) -> str:
    """The file's text; an empty (or all-whitespace) file is an error unless `allow_empty`."""
    if not path.exists():
        raise DataError(path, None, "no such file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(path, line, f"not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})") from None
    if not text.strip():
        if allow_empty:
            return ""
        raise DataError(path, None, "file is empty")
    return text


def _iter_jsonl(path: Path, allow_empty: bool = False) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(_read_text(path, allow_empty).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None


def _iter_json_list(path: Path, allow_empty: bool = False) -> Iterator[tuple[int, Any]]:
    """Stream the elements of a top-level JSON list, each with the line it starts on."""
    text = _read_text(path, allow_empty)
    if not text:
        return
    decoder = json.JSONDecoder()
    ws = " \t\r\n"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    def fail(i: int, msg: str) -> DataError:
        return DataError(path, text.count("\n", 0, i) + 1, msg)

    i = skip(0)
    if text[i] != "[":
        raise fail(i, "expected a JSON list of objects (Alpaca format) or use .jsonl for one object per line")
    i = skip(i + 1)
    line, line_pos = 1, 0
    if i < len(text) and text[i] == "]":
        return
    while True:
        line += text.count("\n", line_pos, i)
        line_pos = i
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise DataError(path, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        yield line, obj
        i = skip(end)
        if i >= len(text):
            raise fail(i, "invalid JSON: unterminated list")
        if text[i] == "]":
            if skip(i + 1) != len(text):
                raise fail(i, "invalid JSON: extra data after the list")
            return
        if text[i] != ",":
            raise fail(i, f"invalid JSON: expected ',' or ']' but found {text[i]!r}")
        i = skip(i + 1)


def _iter_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(path, None, f"not a readable parquet file: {exc}") from None
    n = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            n += 1
            yield f"row {n}", row


def _iter_hf_disk(path: Path, split: str | None) -> Iterator[tuple[str, Any]]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        names = [split] if split else list(ds.keys())
        missing = [s for s in names if s not in ds]
        if missing:
            raise DataError(path, None, f"no split {missing[0]!r}; splits are {sorted(ds.keys())}")
        parts = [(s, ds[s]) for s in names]
    else:
        parts = [("", ds)]
    for name, part in parts:
        for n, row in enumerate(part, start=1):
            yield f"{name + ' ' if name else ''}row {n}", row


def is_hf_disk_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def iter_rows(
    path: str | os.PathLike, split: str | None = None, *, allow_empty: bool = False
) -> Iterator[tuple[str | int, Any]]:
    """Yield (where, raw row) from any supported file; `where` is a line number or 'row N'.

    An empty .jsonl/.json file (0 bytes or only whitespace) is an error ("file is empty") unless
    `allow_empty`: then it simply has no rows."""
    p = Path(path)
    if is_hf_disk_dir(p):
        yield from _iter_hf_disk(p, split)
    elif p.suffix == ".jsonl":
        yield from _iter_jsonl(p, allow_empty)
    elif p.suffix == ".json":
        yield from _iter_json_list(p, allow_empty)
    elif p.suffix == ".parquet":
        if not p.exists():
            raise DataError(p, None, "no such file")
        yield from _iter_parquet(p)
    elif not p.exists():
        raise DataError(p, None, "no such file or directory")
    else:
        raise DataError(
            p,
            None,
            "unknown format: expected .json (Alpaca list), .jsonl, .parquet "
            "or a folder written by datasets.save_to_disk",
        )


def read_records(
    path: str | os.PathLike, *, default_source: str, split: str | None = None, allow_empty: bool = False
) -> Iterator[tuple[str | int, Record | RowError]]:
    """Yield (where, Record) for good rows and (where, RowError) for bad ones; bad files raise DataError
    (an empty file too, unless `allow_empty`)."""
    for where, row in iter_rows(path, split, allow_empty=allow_empty):
        try:
            yield where, record_from_row(row, default_source=default_source)
        except RowError as err:
            yield where, err


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name


def iter_input_rows(
    spec: str | os.PathLike,
    *,
    split: str | None = "train",
    revision: str | None = None,
    config: str | None = None,
    offline_hint: str = "download the dataset files and pass a local path",
) -> Iterator[tuple[str | int, Any]]:
    """Rows from a local file / `save_to_disk` folder, or from the Hugging Face hub (dataset `config`,
    one `split`, or every split when `split` is None, each row labelled with its split).

    A local folder that is not a `save_to_disk` folder (e.g. a clone of a hub dataset repo) goes
    through `datasets.load_dataset` exactly as a hub id does, so the hub code path is testable offline.
    """
    path = Path(spec)
    if path.exists() and (path.is_file() or is_hf_disk_dir(path)):
        yield from iter_rows(path, split=None if path.is_file() else split)
        return
    if not path.exists() and not HUB_ID.match(str(spec)):
        raise DataError(str(spec), None, "no such file, and not a Hugging Face hub id (owner/name)")
    yield from _iter_hub_rows(str(spec), split=split, revision=revision, config=config, hint=offline_hint)


def _iter_hub_rows(
    spec: str, *, split: str | None, revision: str | None, config: str | None, hint: str
) -> Iterator[tuple[str, Any]]:
    import datasets

    try:
        loaded = datasets.load_dataset(spec, config, split=split, revision=revision, streaming=True)
    except Exception as exc:  # hub/network/schema errors come in many types
        raise DataError(
            spec,
            None,
            f"could not load from the Hugging Face hub or folder: {exc}; offline? {hint}",
        ) from None
    parts = loaded.items() if split is None else [("", loaded)]
    for name, part in parts:
        for n, row in enumerate(part, start=1):
            yield f"{name} row {n}".lstrip(), row


# ---------------------------------------------------------------- writing


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; it replaces `path` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes it 0600; the file should get what open() would give
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty temporary sibling folder to fill; when the block succeeds it becomes `path`, and on
    an error it is removed, so no reader ever sees a half-written folder. An existing `path` is swapped
    out (`replace`), or kept and ours discarded (not `replace`: another process finished the same work)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes it 0700; the folder should get what mkdir would give
    try:
        yield tmp
        if final.exists() and not replace:
            return
        if final.exists():
            stale = final.with_name(f"{tmp.name}.old")
            os.replace(final, stale)  # aside first: the swap leaves no moment without a whole folder
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if replace or not final.exists():
                raise  # else a concurrent writer's finished folder took the place first: keep it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` so that readers see the old file or the whole new one, never a half file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_jsonl(records: Iterable[Record], path: str | os.PathLike) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def write_alpaca_json(records: Iterable[Record], path: str | os.PathLike) -> int:
    rows = [rec.to_alpaca() for rec in records]
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=4, ensure_ascii=False)
        f.write("\n")
    return len(rows)


def _arrow_rows(records: Iterable[Record]) -> list[dict[str, str]]:
    return [{**rec.to_dict(), "meta": json.dumps(rec.meta, ensure_ascii=False, sort_keys=True)} for rec in records]


def write_parquet(records: Iterable[Record], path: str | os.PathLike) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _arrow_rows(records)
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=_arrow_schema()), tmp)
    return len(rows)


def _arrow_schema():  # built lazily: importing this module must not import pyarrow
    import pyarrow as pa

    return pa.schema(
        [(name, pa.string()) for name in ("instruction", "input", "output", "source", "id", "language", "meta")]
    )


def write_hf_dataset(splits: dict[str, list[Record]], path: str | os.PathLike) -> None:
    """Write a DatasetDict with `datasets.save_to_disk`, swapped into place only when complete."""
    import datasets

    datasets.disable_progress_bars()  # a sub-second save; the bars only clutter CLI logs
    features = datasets.Features({f.name: datasets.Value("string") for f in _arrow_schema()})
    dd = datasets.DatasetDict(
        {name: datasets.Dataset.from_list(_arrow_rows(recs), features=features) for name, recs in splits.items()}
    )
    with atomic_dir(path) as tmp:
        dd.save_to_disk(str(tmp))


WRITERS = {".jsonl": write_jsonl, ".json": write_alpaca_json, ".parquet": write_parquet}


def write_records(records: Iterable[Record], path: str | os.PathLike) -> int:
    """Write by extension: .jsonl (full), .json (Alpaca), .parquet (full)."""
    suffix = Path(path).suffix
    if suffix not in WRITERS:
        raise ValueError(f"{path}: cannot write {suffix!r}; use one of {sorted(WRITERS)}")
    return WRITERS[suffix](records, path)
