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
    figure.update_yaxes(title_text="macro-F1", range=[0, 1], tickmode="linear", tick0=0, dtick=0.2, showgrid=False,
                        secondary_y=True)
    figure.update_layout(title="Training progress")
    return _tidy(figure, 300)


FAMILY_COLOURS = {"baseline": "#94A3B8", "transformer": "#4C6EF5"}
OUTCOME_COLOURS = {"correct": "#12B886", "wrong": "#E03131"}


def comparison_bars(table: pd.DataFrame, metric: str, metric_name: str) -> go.Figure:
    """One bar per run on the chosen test metric, baselines and transformers coloured apart; its bootstrap
    interval as an error bar where the table has one (``<metric> low`` / ``high``)."""
    ordered = table.sort_values(metric, ascending=False)
    bars: dict = {}
    low, high = f"{metric} low", f"{metric} high"
    if low in ordered and ordered[low].notna().all():
        ordered = ordered.assign(_above=ordered[high] - ordered[metric], _below=ordered[metric] - ordered[low])
        bars = {"error_y": "_above", "error_y_minus": "_below"}
    figure = px.bar(ordered, x="run", y=metric, color="family", color_discrete_map=FAMILY_COLOURS,
                    hover_data=["model", "preset", "texts/s"], text=ordered[metric].map("{:.3f}".format),
                    title=f"Test {metric_name} per run" + (" (bars: bootstrap interval)" if bars else ""),
                    labels={metric: metric_name, "run": ""}, **bars)
    figure.update_xaxes(tickvals=ordered["run"], ticktext=ordered["model"] + "<br>" + ordered["run"].str[-6:])
    figure.update_yaxes(range=[0, 1])
    return _tidy(figure, 360)


def per_class_f1(per_class: list[dict]) -> go.Figure:
    """F1 per label, lowest first so the weak classes stand out; undefined values show as gaps."""
    frame = pd.DataFrame(per_class)
    frame["f1"] = frame["f1"].astype(float)
    frame = frame.sort_values("f1", na_position="first")
    figure = px.bar(frame, y="label", x="f1", orientation="h", hover_data=["precision", "recall", "support"],
                    title="F1 per label", color_discrete_sequence=["#4C6EF5"])
    figure.update_xaxes(range=[0, 1])
    figure.update_yaxes(type="category", title_text="")
    return _tidy(figure, max(260, 28 * len(frame) + 90))


#: Column labels of a confusion matrix longer than this in total are slanted so they do not overlap.
CONFUSION_LABEL_CHARACTERS = 40


def confusion_heatmap(labels: list[str], counts: list[list[int]], normalised: list[list[float]],
                      show_share: bool = True) -> go.Figure:
    """Rows are true labels, columns predictions; sized so 20+ labels stay readable."""
    values = normalised if show_share else counts
    text = [[f"{share:.0%}<br>({count})" if show_share else str(count) for share, count in zip(srow, crow)]
            for srow, crow in zip(normalised, counts)]
    many = len(labels) > 12
    figure = go.Figure(go.Heatmap(
        z=values, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=1 if show_share else None,
        text=None if many else text, texttemplate=None if many else "%{text}",
        customdata=text, hovertemplate="true %{y} → predicted %{x}: %{customdata}<extra></extra>",
        colorbar=dict(title="share of row" if show_share else "texts"),
    ))
    side = max(360, 34 * len(labels) + 160)
    # Slanted column labels as soon as they would touch: in a half-page chart, five 15-letter labels do.
    crowded = many or sum(len(label) for label in labels) > CONFUSION_LABEL_CHARACTERS
    figure.update_xaxes(title_text="predicted", tickangle=-45 if crowded else 0, automargin=True, type="category")
    figure.update_yaxes(title_text="true label", autorange="reversed", automargin=True, type="category")
    figure.update_layout(title="Confusion matrix" + (" (share of each true label)" if show_share else " (counts)"),
                         font=dict(size=10 if many else 12))
    return _tidy(figure, side)


def confidence_histogram(confidence: pd.DataFrame) -> go.Figure:
    """How sure the model was, for its right and its wrong answers."""
    figure = px.histogram(confidence, x="confidence", color="outcome", nbins=20, range_x=[0, 1], barmode="overlay",
                          opacity=0.7, color_discrete_map=OUTCOME_COLOURS, title="Confidence of right and wrong answers")
    figure.update_yaxes(title_text="texts")
    return _tidy(figure, 320)


def threshold_chart(curve: list[dict], threshold: float | None = None) -> go.Figure:
    """Accuracy of the texts the model keeps, and the share it keeps, at each review threshold."""
    frame = pd.DataFrame(curve)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=frame["threshold"], y=frame["accuracy_kept"], name="accuracy of kept texts",
                                line=dict(color="#12B886")))
    figure.add_trace(go.Scatter(x=frame["threshold"], y=frame["share_kept"], name="share kept (not sent to review)",
                                line=dict(color="#4C6EF5", dash="dash")))
    if threshold is not None:
        figure.add_vline(x=threshold, line=dict(color="#868E96", dash="dot"), annotation_text=f"{threshold:.2f}")
    figure.update_xaxes(title_text="review threshold (confidence below it goes to a person)", range=[0, 1])
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%")
    figure.update_layout(title="Accuracy vs. coverage by threshold")
    return _tidy(figure, 340)


#: How a period's start reads on a time axis, per period ("h" hour, "D" day).
PERIOD_TICKS = {"h": "%d %b %H:%M", "D": "%d %b"}
PERIOD_LENGTH = {"h": pd.Timedelta(hours=1), "D": pd.Timedelta(days=1)}


def _time_axis(figure: go.Figure, periods: pd.Series, freq: str) -> None:
    """Ticks in whole periods and half a period of room on each side, so one point is not an axis of
    milliseconds around it."""
    figure.update_xaxes(title_text="", type="date", tickformat=PERIOD_TICKS[freq],
                        dtick=PERIOD_LENGTH[freq] // pd.Timedelta(milliseconds=1) if periods.nunique() <= 12 else None)
    if len(periods):
        half = PERIOD_LENGTH[freq] / 2
        figure.update_xaxes(range=[periods.min() - half, periods.max() + half])


def prediction_volume(volume: pd.DataFrame, freq: str = "D") -> go.Figure:
    """Predictions served per period, stacked by model."""
    figure = px.bar(volume, x="period", y="predictions", color="model" if "model" in volume else "run_id",
                    title="Predictions over time")
    _time_axis(figure, volume["period"], freq)
    # a bar as wide as its period (one lone bar would otherwise be a millisecond wide), legend underneath
    figure.update_traces(width=0.8 * (PERIOD_LENGTH[freq] // pd.Timedelta(milliseconds=1)))
    figure.update_layout(legend=dict(title_text="", orientation="h", yanchor="top", y=-0.25, x=0))
    return _tidy(figure, 340)


def _share_over_time(series: pd.DataFrame, share: str, count: str, title: str, freq: str) -> go.Figure:
    """A 0–100% line per period, with markers so a single or sparse point shows, the count on hover."""
    figure = px.line(series, x="period", y=share, markers=True, hover_data=[count], title=title)
    figure.update_traces(marker=dict(size=9))
    figure.update_yaxes(range=[-0.03, 1.03], tickformat=".0%", title_text="")
    _time_axis(figure, series["period"], freq)
    return _tidy(figure, 320)


def review_share(series: pd.DataFrame, freq: str = "D") -> go.Figure:
    """Share of predictions below the review threshold, per period."""
    return _share_over_time(series, "review_share", "predictions", "Share needing review", freq)


def tag_pairs(pairs: pd.DataFrame) -> go.Figure:
    """How many texts carry each pair of tags (the diagonal: each tag's texts), as a heat map."""
    figure = px.imshow(pairs, text_auto=True, color_continuous_scale="Blues", aspect="auto",
                       title="Tags together: texts carrying both (test split)")
    figure.update_xaxes(title_text="", side="bottom")
    figure.update_yaxes(title_text="")
    return _tidy(figure, max(320, 28 * len(pairs) + 120))


def tag_rates(series: pd.DataFrame, freq: str = "D") -> go.Figure:
    """A tagger's share of texts given each tag, per period, a line per tag."""
    figure = px.line(series, x="period", y="rate", color="tag", markers=True, hover_data=["texts"],
                     title="Tag rates: share of texts given each tag")
    figure.update_yaxes(tickformat=".0%", title_text="", rangemode="tozero")
    _time_axis(figure, series["period"], freq)
    figure.update_layout(legend=dict(title_text="", orientation="h", yanchor="top", y=-0.25, x=0))
    return _tidy(figure, 340)


def label_mix(drift: pd.DataFrame, distance: float) -> go.Figure:
    """Label shares of recent predictions next to the training data's."""
    tidy = drift.melt(id_vars="label", var_name="data", value_name="share")
    figure = px.bar(tidy, x="label", y="share", color="data", barmode="group",
                    color_discrete_sequence=["#4C6EF5", "#94A3B8"],
                    title=f"Label mix: recent predictions vs training data (distance {distance:.2f})")
    figure.update_yaxes(tickformat=".0%", title_text="")
    return _tidy(figure, 340)


def model_usage(usage: pd.DataFrame) -> go.Figure:
    """Predictions served by each model run, with its feedback agreement where feedback exists."""
    frame = usage.assign(agreement_text=[f"{a:.0%} agree" if pd.notna(a) else "no feedback"
                                         for a in usage["agreement"]])
    figure = px.bar(frame, x="model" if "model" in frame else "run_id", y="predictions", text="agreement_text",
                    hover_data=["users"], title="Predictions per model", color_discrete_sequence=["#4C6EF5"])
    figure.update_xaxes(title_text="")
    return _tidy(figure, 320)


def agreement_over_time(series: pd.DataFrame, freq: str = "D") -> go.Figure:
    """Share of feedback saying the model was right, per period."""
    return _share_over_time(series, "agreement", "feedback", "Feedback agreement", freq)


#: The colour of texts that fit no topic on the map.
NO_TOPIC_COLOUR = "#CBD5E1"
NO_TOPIC = "(no topic)"


def topic_map(x: list[float], y: list[float], topics: list[str | None], texts: list[str], max_points: int,
              seed: int = 0) -> go.Figure:
    """Every text (or a random ``max_points`` of them) as a point on the 2-D map, coloured by its topic's name;
    texts in no topic in pale grey. Hovering shows the text."""
    frame = pd.DataFrame({"x": x, "y": y, "topic": [t or NO_TOPIC for t in topics],
                          "text": [t if len(t) <= 120 else t[:117] + "…" for t in texts]})
    shown = frame.sample(max_points, random_state=seed) if len(frame) > max_points else frame
    order = [t for t in frame["topic"].value_counts().index if t != NO_TOPIC] + [NO_TOPIC]
    figure = px.scatter(shown, x="x", y="y", color="topic", hover_name="text", hover_data={"x": False, "y": False},
                        category_orders={"topic": order}, color_discrete_map={NO_TOPIC: NO_TOPIC_COLOUR},
                        title="Texts by meaning" + (f" ({max_points:,} of {len(frame):,} drawn)"
                                                    if len(frame) > max_points else ""))
    figure.update_traces(marker=dict(size=5, opacity=0.75))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _tidy(figure, 520)


def learning_curve(people_labels: list[int], macro_f1: list[float], models: list[str]) -> go.Figure:
    """Validation macro-F1 of each trained run against the labels people had given, a line per kind of model."""
    frame = pd.DataFrame({"labels given by people": people_labels, "validation macro-F1": macro_f1, "model": models})
    figure = px.line(frame, x="labels given by people", y="validation macro-F1", color="model", markers=True,
                     title="What more labels did")
    figure.update_yaxes(range=[0, 1.02])
    return _tidy(figure, 360)
