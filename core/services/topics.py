"""Topic discovery as a use case: the texts of a file (with or without labels) grouped into topics for an
analyst to name (core.models.topics), audited."""

from __future__ import annotations

from typing import Callable, Sequence

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.models.embeddings import shared_encoder
from core.models.topics import GRANULARITY, TopicError, TopicMap, check_groupable, discover_topics, place_unassigned
from core.services.studio import Caller, Studio

__all__ = ["GRANULARITY", "TopicError", "TopicMap", "find_topics"]

#: ``progress(texts embedded, texts)`` while the texts are embedded (the slow part on a CPU).
EmbedProgress = Callable[[int, int], None]


def find_topics(studio: Studio, caller: Caller, texts: Sequence[str], source: str, granularity: float = 1.0,
                progress: EmbedProgress | None = None, place_left_out: bool = False) -> TopicMap:
    """Embed ``texts`` with the configured model and group them into topics; ``source`` names them in the log.
    With ``place_left_out``, the texts the grouping left out go to their nearest topic (and are listed)."""
    caller.require(Permission.MANAGE_DATA)
    config = studio.config
    check_groupable(texts, config.topics)  # before the minutes of embedding
    encoder = shared_encoder(config.model.name, config.model.max_length)
    vectors = encoder.encode([str(t) for t in texts],
                             None if progress is None else lambda done: progress(done, len(texts)))
    found = discover_topics(texts, vectors, config.topics, config.training.seed, granularity)
    if place_left_out:
        found = place_unassigned(found, vectors)
    studio.audit(caller, EventType.TOPICS_DISCOVERED, file=source, texts=len(texts), topics=len(found.topics),
                 unassigned=found.unassigned, placed=len(found.placed), seconds=round(found.seconds, 1))
    return found
