"""An explanation drawn on its text: each weighed word shaded by how hard it pushed."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.models.explain import Explanation

#: How many shades the highlighting uses (a word's shade: its weight over the largest weight in the text).
SHADES = 3


def highlighted_html(text: str, explanation: Explanation) -> str:
    """The text as HTML with each weighed word in a shaded span (``fs-why-pos-N`` towards the label,
    ``fs-why-neg-N`` towards the runner-up); every piece of the text is HTML-escaped."""
    largest = max((abs(w.weight) for w in explanation.words), default=0.0)
    pieces, at = [], 0
    for word in sorted(explanation.words, key=lambda w: w.start):
        pieces.append(html.escape(text[at:word.start]))
        shade = min(SHADES, int(abs(word.weight) / largest * SHADES + 0.999)) if largest else 0
        escaped = html.escape(text[word.start:word.end])
        if shade:
            side = "pos" if word.weight > 0 else "neg"
            pieces.append(f'<span class="fs-why-{side}-{shade}" title="{word.weight:+.3f}">{escaped}</span>')
        else:
            pieces.append(escaped)
        at = word.end
    pieces.append(html.escape(text[at:]))
    return f'<div class="fs-why">{"".join(pieces)}</div>'
