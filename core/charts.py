"""Plotly figures for the pages; building them here keeps the pages thin and testable."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

SPLIT_COLOURS = {"train": "#4C6EF5", "validation": "#F59F00", "test": "#12B886"}


def _tidy(figure: go.Figure, height: int) -> go.Figure:
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="")
    return figure


def label_distribution(before: dict[str, int], after: dict[str, int] | None = None) -> go.Figure:
    """Examples per label; with ``after``, the counts before and after cleaning side by side."""
    rows = [{"label": l, "examples": n, "data": "as uploaded"} for l, n in before.items()]
    if after is not None:
        rows += [{"label": l, "examples": n, "data": "after cleaning"} for l, n in after.items()]
    frame = pd.DataFrame(rows, columns=["label", "examples", "data"])
    order = sorted(set(frame["label"]), key=lambda l: -max(before.get(l, 0), (after or {}).get(l, 0)))
    figure = px.bar(frame, x="label", y="examples", color="data" if after is not None else None,
                    barmode="group", category_orders={"label": order}, title="Examples per label",
                    color_discrete_sequence=["#94A3B8", "#4C6EF5"] if after is not None else ["#4C6EF5"])
    return _tidy(figure, 340)


def split_distribution(counts: dict[str, dict[str, int]]) -> go.Figure:
    """Share of each label within each split, so stratification can be seen at a glance."""
    rows = []
    for split, per_label in counts.items():
        total = sum(per_label.values()) or 1
        rows += [{"split": split, "label": l, "examples": n, "share": n / total} for l, n in per_label.items()]
    frame = pd.DataFrame(rows, columns=["split", "label", "examples", "share"])
    figure = px.bar(frame, x="label", y="share", color="split", barmode="group", hover_data=["examples"],
                    title="Label share per split", color_discrete_map=SPLIT_COLOURS)
    figure.update_yaxes(tickformat=".0%")
    return _tidy(figure, 340)


def training_curve(history: list[dict]) -> go.Figure:
    """Training loss by step, and validation macro-F1 at each evaluation on a second axis."""
    from plotly.subplots import make_subplots

    figure = make_subplots(specs=[[{"secondary_y": True}]])
    losses = [h for h in history if "loss" in h]
    evaluations = [h for h in history if "validation_macro_f1" in h]
    figure.add_trace(go.Scatter(x=[h["step"] for h in losses], y=[h["loss"] for h in losses],
                                name="training loss", mode="lines", line=dict(color="#4C6EF5")))
    figure.add_trace(go.Scatter(x=[h["step"] for h in evaluations], y=[h["validation_macro_f1"] for h in evaluations],
                                name="validation macro-F1", mode="lines+markers", line=dict(color="#F59F00")),
                     secondary_y=True)
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(title_text="loss", secondary_y=False)
    figure.update_yaxes(title_text="macro-F1", range=[0, 1], secondary_y=True)
    figure.update_layout(title="Training progress")
    return _tidy(figure, 300)
