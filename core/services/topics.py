"""Topic discovery as a use case: the texts of a file (with or without labels) grouped into topics for an
analyst to name (core.models.topics), audited."""

from __future__ import annotations

from typing import Callable, Sequence

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.models.embeddings import shared_encoder
from core.models.topics import GRANULARITY, TopicError, TopicMap, check_groupable, discover_topics
from core.services.studio import Caller, Studio

__all__ = ["GRANULARITY", "TopicError", "TopicMap", "find_topics"]

#: ``progress(texts embedded, texts)`` while the texts are embedded (the slow part on a CPU).
EmbedProgress = Callable[[int, int], None]


def find_topics(studio: Studio, caller: Caller, texts: Sequence[str], source: str, granularity: float = 1.0,
                progress: EmbedProgress | None = None) -> TopicMap:
    """Embed ``texts`` with the configured model and group them into topics; ``source`` names them in the log."""
    caller.require(Permission.MANAGE_DATA)
    config = studio.config
    check_groupable(texts, config.topics)  # before the minutes of embedding
    encoder = shared_encoder(config.model.name, config.model.max_length)
    vectors = encoder.encode([str(t) for t in texts],
                             None if progress is None else lambda done: progress(done, len(texts)))
    found = discover_topics(texts, vectors, config.topics, config.training.seed, granularity)
    studio.audit(caller, EventType.TOPICS_DISCOVERED, file=source, texts=len(texts), topics=len(found.topics),
                 unassigned=found.unassigned, seconds=round(found.seconds, 1))
    return found
