"""What is wrong with multi-label data, as findings like the single-label report's: rows with no tag, how many
tags a text carries, tags too rare to split, tags that always come together, spellings of one tag, and the same
text with different tag sets. Each finding names its lines and what to do.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Sequence

from core.data.validate import (
    Finding, Fix, ReportBuilder, Severity, describe_lines, min_examples_per_class, normalise_text,
)
from core.platform.config import AppConfig

#: Tags shown by name in a message (the rest counted).
TAGS_NAMED = 6
#: Two tags on exactly the same texts are reported together only from this many texts on (chance below it).
MIN_TOGETHER = 3


def tag_key(tag: str) -> str:
    """The form under which two tag spellings count as one tag: case, spaces, hyphens and underscores ignored."""
    return re.sub(r"[\s_\-]+", "", tag.casefold())


def _names(tags: Sequence[str], counts: Counter | None = None) -> str:
    shown = [f"'{t}'" + (f" ({counts[t]})" if counts is not None else "") for t in tags[:TAGS_NAMED]]
    more = f" and {len(tags) - TAGS_NAMED} more" if len(tags) > TAGS_NAMED else ""
    return ", ".join(shown) + more


def _examples(builder: ReportBuilder, rows: Sequence[int], lines: Sequence[int], texts: Sequence[str],
              tags: Sequence[tuple[str, ...]], detail: str = "") -> None:
    """Example rows (line, text, its tags) for the finding just added."""
    builder.findings[-1].examples = [
        {"line": lines[i], "text": texts[i][:160], "label": "; ".join(tags[i]), **({"detail": detail} if detail else {})}
        for i in rows[:builder.examples_per_finding]]


def tag_findings(lines: Sequence[int], texts: Sequence[str], tags: Sequence[tuple[str, ...]],
                 config: AppConfig) -> list[Finding]:
    """The multi-label findings for rows given as their lines, texts and tag tuples."""
    builder = ReportBuilder(config.data.examples_per_finding)
    counts = Counter(tag for row in tags for tag in row)
    _untagged(builder, lines, texts, tags)
    _variants(builder, lines, texts, tags, counts)
    _rare(builder, lines, texts, tags, counts, min_examples_per_class(config))
    _conflicts(builder, lines, texts, tags)
    _together(builder, lines, texts, tags)
    _per_text(builder, tags)
    return builder.findings


def _untagged(builder: ReportBuilder, lines, texts, tags) -> None:
    rows = [i for i, row in enumerate(tags) if not row]
    if rows:
        builder.add("untagged", Severity.WARNING, "Texts without a tag",
                    f"{len(rows):,} row(s) carry no tag ({describe_lines([lines[i] for i in rows])}). Drop them, or "
                    "keep them as \"none of these\" if a text may rightly have no tag.",
                    lines=[lines[i] for i in rows])
        _examples(builder, rows, lines, texts, tags)


def _variants(builder: ReportBuilder, lines, texts, tags, counts: Counter) -> None:
    spellings: dict[str, list[str]] = defaultdict(list)
    for tag in counts:
        spellings[tag_key(tag)].append(tag)
    groups = [sorted(group, key=lambda t: (-counts[t], t)) for group in spellings.values() if len(group) > 1]
    if not groups:
        return
    minority = {tag for group in groups for tag in group[1:]}
    rows = [i for i, row in enumerate(tags) if minority & set(row)]
    described = "; ".join(" = ".join(f"'{t}' ({counts[t]})" for t in group) for group in groups[:TAGS_NAMED])
    builder.add("tag_variants", Severity.WARNING, "Spellings of one tag",
                f"{len(groups)} tag(s) are spelled in several ways ({described}); each spelling would be learnt as a "
                f"tag of its own. The rarer spellings are on {describe_lines([lines[i] for i in rows])}: tick "
                "'Merge tag spellings' (--fix normalise_labels) to give each tag its most common spelling.",
                lines=[lines[i] for i in rows], fix=Fix.NORMALISE_LABELS)
    _examples(builder, rows, lines, texts, tags)


def _rare(builder: ReportBuilder, lines, texts, tags, counts: Counter, needed: int) -> None:
    rare = sorted((t for t, n in counts.items() if n < needed), key=lambda t: (counts[t], t))
    if not rare:
        return
    rows = [i for i, row in enumerate(tags) if set(rare) & set(row)]
    builder.add("rare_tags", Severity.WARNING, "Tags too rare to split",
                f"{len(rare)} tag(s) are on fewer than {needed} texts, one per split: {_names(rare, counts)}. A model "
                "can neither learn nor be scored on them: add texts with these tags, merge them into a broader tag, "
                f"or leave them out ({describe_lines([lines[i] for i in rows])}).", lines=[lines[i] for i in rows])
    _examples(builder, rows, lines, texts, tags)


def _conflicts(builder: ReportBuilder, lines, texts, tags) -> None:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        groups[normalise_text(text)].append(i)
    conflicting = [rows for rows in groups.values() if len({frozenset(tags[i]) for i in rows}) > 1]
    if not conflicting:
        return
    rows = [i for group in conflicting for i in group]
    builder.add("conflicting_tags", Severity.WARNING, "Same text, different tags",
                f"{len(conflicting):,} text(s) appear more than once with different tag sets "
                f"({describe_lines([lines[i] for i in rows])}). Give each the tags it should have; training would "
                "see both answers.", lines=[lines[i] for i in rows])
    _examples(builder, rows, lines, texts, tags)


def _together(builder: ReportBuilder, lines, texts, tags) -> None:
    where: dict[str, frozenset[int]] = {}
    for tag in {t for row in tags for t in row}:
        where[tag] = frozenset(i for i, row in enumerate(tags) if tag in row)
    same: dict[frozenset[int], list[str]] = defaultdict(list)
    for tag, rows in where.items():
        if len(rows) >= MIN_TOGETHER:
            same[rows].append(tag)
    pairs = [sorted(group) for group in same.values() if len(group) > 1]
    if not pairs:
        return
    described = "; ".join(" + ".join(f"'{t}'" for t in group) + f" ({len(where[group[0]])} texts)"
                          for group in pairs[:TAGS_NAMED])
    rows = sorted(i for group in pairs for i in where[group[0]])
    builder.add("tags_together", Severity.NOTE, "Tags that always come together",
                f"Some tags are on exactly the same texts: {described}. They are probably one tag; merge them if "
                "so (a model cannot tell them apart).", lines=[lines[i] for i in rows])
    _examples(builder, rows, lines, texts, tags)


def _per_text(builder: ReportBuilder, tags) -> None:
    sizes = Counter(min(len(row), 3) for row in tags)
    total = len(tags)
    if not total:
        return
    mean = sum(len(row) for row in tags) / total
    parts = [f"{'no tag' if n == 0 else ('3 or more tags' if n == 3 else f'{n} tag' + ('s' if n > 1 else ''))} "
             f"{sizes[n] / total:.0%}" for n in sorted(sizes)]
    builder.add("tags_per_text", Severity.NOTE, "Tags per text",
                f"On average {mean:.2f} tags per text: {', '.join(parts)}.", count=total)
