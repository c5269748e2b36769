"""Train page: pick a dataset version and models, start, watch progress, cancel."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.presentation import charts
from core.presentation.display import progress_count, when
from core.services.accounts import Permission
from core.services.datasets import DatasetVersion, dataset_versions, thin_validation
from core.services.labelling import descriptions
from core.services.runs import (
    POOLINGS, PRESET_NAMES, Hyperparameters, Recipe, RunError, RunRecord, RunRequest, active_runs, cancel_run,
    few_shot_estimate, follow_run, kinds_for, model_kinds, runs, start_runs, transformer_plan, workers_online,
)
from core.services.studio import AppConfig
from pages.common.widgets import duration, plain, start_page

DEFAULT_KINDS = ("tfidf_logreg", "tfidf_nb", "embedding_logreg")
ZERO_SHOT, FEW_SHOT = "zero_shot", "few_shot"
PRESET_HELP = {
    "quick": "Quick: a first fine-tuned model within about {budget:g} minutes.",
    "balanced": "Balanced: the best model within about {budget:g} minutes; the usual choice.",
    "thorough": "Thorough: more passes and more patience for the last points, up to about {budget:g} minutes.",
}
POOLING_NAMES = {"mean": "Mean of the token vectors", "cls": "The model's own [CLS] pooler"}
POLL_SECONDS = 1.0
#: Session keys: runs being watched, finished-run notices to show, whether the page is polling.
WATCHED, FINISHED, POLLING = "train_watched", "train_finished", "train_polling"


def advanced_settings(chosen: Hyperparameters) -> Hyperparameters:
    """The Advanced section: every hyper-parameter of the recipe, editable; what is changed here wins.

    The widgets' ranges always include the recipe's own value, so a configuration
    beyond the usual range still shows (and is kept) instead of breaking the page.
    """
    def number(column, label: str, low, high, value, step=None, **kwargs):
        return column.number_input(label, min(low, value), max(high, value), value, step, **kwargs)

    with st.expander("Advanced settings"):
        left, middle, right = st.columns(3)
        return Hyperparameters(
            batch_size=int(number(left, "Batch size", 1, 512, chosen.batch_size)),
            epochs=float(number(middle, "Epochs", 0.5, 50.0, float(chosen.epochs), 0.5)),
            learning_rate=float(number(right, "Learning rate", 1e-7, 1e-2, chosen.learning_rate, format="%.1e")),
            weight_decay=float(number(left, "Weight decay", 0.0, 1.0, chosen.weight_decay, 0.01)),
            warmup_ratio=float(number(middle, "Warm-up share of steps", 0.0, 0.5, chosen.warmup_ratio, 0.05)),
            early_stopping_patience=int(number(right, "Early-stopping patience (epochs)", 1, 20,
                                               chosen.early_stopping_patience)),
            pooling=left.selectbox("Pooling", POOLINGS, POOLINGS.index(chosen.pooling),
                                   format_func=POOLING_NAMES.get,
                                   help="How the classifier reads the encoder's token vectors."),
            warm_start=middle.checkbox("Start the head from a linear probe", chosen.warm_start,
                                       help="Fit the classification layer on the frozen features first."),
            class_weighted=right.checkbox("Weigh rare labels more", chosen.class_weighted,
                                          help="Loss weighted by inverse label frequency, for imbalanced data."),
        )


def show_recipe(config: AppConfig, recipe: Recipe) -> None:
    """The plan in words: what will be trained, why, and how long it should take."""
    estimate = f"about {duration(recipe.estimate_s)}" if recipe.estimate_s is not None else "an unknown time"
    speed = recipe.speed or 0.0
    message = (f"Fine-tuning {config.model.name} will take {estimate} on this machine start to finish, less "
               f"if it stops early "
               f"({speed:.{0 if speed >= 10 else 1}f} training texts/s). Plan: {recipe.summary}.")
    if recipe.over_budget:
        st.warning(message + f" That is more than the preset's {duration(recipe.budget_s)}; train on a sample "
                             "or choose a shorter preset for a faster result.")
    else:
        st.info(message)
    with st.expander("Why these settings"):
        st.markdown("\n".join(f"- {reason}" for reason in recipe.reasons))


@st.fragment(run_every=POLL_SECONDS)
def wait_for_speed(config: AppConfig, version: DatasetVersion, preset: str, limit: int | None) -> None:
    """Polls for the worker's measurement; the page reruns once it is there, to show the estimate."""
    try:
        measured = transformer_plan(studio, caller, version, preset, limit).speed is not None
    except (OSError, ValueError):
        measured = True  # failed: the rerun shows why
    if measured:
        st.rerun()


def request_for(kind: str, version: DatasetVersion, preset: str, limit: int | None, recipe: Recipe | None,
                config: AppConfig) -> RunRequest:
    """The transformer trains with its recipe; the baselines need no hyper-parameters beyond the preset's."""
    if model_kinds()[kind].plans_recipe and recipe is not None:
        return RunRequest(version.ref, kind, preset, recipe.hyperparameters, max_train_examples=limit, recipe=recipe)
    return RunRequest(version.ref, kind, preset, model_kinds()[kind].Settings(), max_train_examples=limit)


def show_run_progress(record: RunRecord) -> None:
    """One run: progress bar, step/epoch/ETA, live chart, Cancel."""
    with st.container(border=True):
        title, button = st.columns([5, 1], vertical_alignment="center")
        title.markdown(f"**{plain(record.name)}** · {record.preset}")
        # The runner records the cancellation (and who asked for it) at once; the run stops at its next step.
        cancelling = record.cancelled_by is not None
        if button.button("Cancelling…" if cancelling else "Cancel", key=f"cancel:{record.run_id}",
                         disabled=cancelling) and cancel_run(studio, caller, record.run_id):
            st.toast(f"Cancelling {record.name}…")
            record = follow_run(studio, caller, record.run_id)
        if record.state.value == "queued":
            st.progress(0.0, text="Waiting for a free worker")
            return
        epoch = f" · epoch {record.epoch:.2f}" if record.epoch is not None else ""
        loss = f" · loss {record.loss:.4f}" if record.loss is not None else ""
        message = "cancelling…" if record.cancelled_by else (record.message or "starting")
        st.progress(record.fraction_done, text=f"{message} · {progress_count(record.step, record.total_steps, record.unit)}"
                                               f"{epoch}{loss} · elapsed {duration(record.elapsed_now)} · ETA "
                                               f"{duration(record.eta_s)}")
        if record.history:
            st.plotly_chart(charts.training_curve(record.history), width="stretch", key=f"curve:{record.run_id}")


#: The columns of the runs table as drawn and their widths (pixels), so that they fit the page's width (a cell
#: cut short shows whole on hover); the run's id stays out of sight (the Evaluate page's details show it) and the
#: errors are listed under the table.
RUN_WIDTHS = {"run": 300, "state": 80, "test macro-F1": 95, "test accuracy": 95, "train time": 80, "started": 120,
              "preset": 75}


def runs_table(records: list[RunRecord]) -> pd.DataFrame:
    """Every run as people read it: name, state, scores ("—" where there are none yet), the id last."""
    def score(metrics: dict | None, name: str) -> str:
        return f"{metrics[name]:.3f}" if metrics and metrics.get(name) is not None else "—"

    return pd.DataFrame([{
        "run": r.name, "state": r.state.value, "preset": r.preset,
        "test accuracy": score(r.test_metrics, "accuracy"), "test macro-F1": score(r.test_metrics, "macro_f1"),
        "train time": duration(r.durations.get("train_s")), "started": when(r.started_at),
        "error": r.error or "", "run id": r.run_id,
    } for r in records])


def finished_notices(active: list[RunRecord]) -> list[str]:
    """What ended since the last look (a run this session watched that is no longer active), in words."""
    now = {r.run_id for r in active}
    ended = [run_id for run_id in st.session_state.get(WATCHED, set()) if run_id not in now]
    st.session_state[WATCHED] = now
    notices = []
    for run_id in ended:
        try:
            record = follow_run(studio, caller, run_id)
        except (RunError, OSError):
            continue
        macro_f1 = (record.test_metrics or {}).get("macro_f1")
        score = f", test macro-F1 {macro_f1:.3f}" if macro_f1 is not None else ""
        notices.append(f"{record.name}: {record.state.value}{score}.")
    return notices


def choose_version(versions: list[DatasetVersion]) -> DatasetVersion:
    """Step 1: the dataset version to train on (the newest by default), with its size."""
    st.subheader("1 · Dataset and models")
    refs = [v.ref for v in versions]
    ref = st.selectbox("Dataset version", refs, index=len(refs) - 1, key="train_dataset")
    version = next(v for v in versions if v.ref == ref)
    sizes = version.meta.get("split_sizes") or {split: sum(counts.values())
                                                 for split, counts in version.meta["split_counts"].items()}
    kind = (f"{len(version.labels)} tags (none, one or several per text)" if version.multi_label
            else f"{len(version.labels)} labels")
    st.caption(f"{version.meta['rows']:,} examples · {kind} · {sizes['train']:,} train / "
               f"{sizes['validation']:,} validation / {sizes['test']:,} test")
    if thin := thin_validation(version.meta["split_counts"], config.compare.min_validation_per_label):
        st.caption(f"Before you train: {plain(thin)}")
    return version


def choose_models(version: DatasetVersion) -> list[str]:
    """The model kinds to train: the fast ones ticked by default, and few-shot too when the labels have only a
    handful of texts each (said why). A person's ticks stay when another version is chosen; a kind ticked for the
    data has its own box, so it comes ticked when the data calls for it."""
    ticked = kinds_for(studio, caller, version, DEFAULT_KINDS)
    if ticked.reason:
        st.caption(plain(ticked.reason))
    suggested = set(ticked.kinds) - set(DEFAULT_KINDS)
    chosen = [kind for kind, cls in model_kinds().items()
              if st.checkbox(cls.title, value=kind in ticked.kinds,
                             key=f"kind:{kind}" + (":for-this-data" if kind in suggested else ""),
                             help=cls.blurb or None)]
    if ZERO_SHOT in chosen:
        described = descriptions(studio, caller, version.ref)
        st.caption(f"Zero-shot reads the names with the descriptions given on the Label page: {len(described)} of "
                   f"{len(version.labels)} labels described." if described else
                   "No label has a description yet: zero-shot reads the names alone (a sentence per label can be "
                   "given on the Label page).")
    return chosen


def choose_preset(chosen: list[str]) -> tuple[str, int | None]:
    """Step 2: the preset (only when the transformer is ticked: it is its time budget) and a sample size."""
    st.subheader("2 · Preset")
    if any(model_kinds()[kind].plans_recipe for kind in chosen):
        preset = st.radio("Preset", PRESET_NAMES, index=PRESET_NAMES.index(config.training.preset),
                          format_func=str.capitalize, horizontal=True, key="train_preset",
                          help="A preset promises a time budget; the transformer's settings are chosen from your "
                               "data and this machine's speed. The baselines need none.")
        st.caption(PRESET_HELP[preset].format(budget=config.training.goal(preset).time_budget_minutes))
    else:  # a preset is the transformer's time budget: promising "about 20 minutes" for these misled people
        preset = config.training.preset
        st.caption("The models ticked are baselines: they train in seconds to a minute and need no preset. "
                   "Presets set the fine-tuned transformer's time budget; tick it to choose one.")
    limit = st.number_input("Train on at most this many examples (0 = all)", 0, 10**7, 0, 100, key="train_limit",
                            help="A stratified sample of the training split, for a fast first try.") or None
    return preset, limit


def plan_transformer(version: DatasetVersion, preset: str, limit: int | None) -> Recipe | None:
    """The transformer's recipe with this machine's speed and the Advanced overrides; None when its model cannot
    be loaded (said in words)."""
    try:
        recipe = transformer_plan(studio, caller, version, preset, limit)
    except (OSError, ValueError) as exc:
        st.warning(f"The model {config.model.name!r} could not be loaded to plan its training: {exc}")
        return None
    recipe = recipe.with_overrides(advanced_settings(recipe.hyperparameters))
    if recipe.speed is None:  # a worker measures it: the page stays usable meanwhile
        measuring = (f"A training worker is measuring how fast {config.model.name} trains (a few seconds); the "
                     "estimate appears here." if workers_online(studio, caller) else
                     f"No training worker is running to measure how fast {config.model.name} trains; the estimate "
                     "appears here once one runs (training needs one too).")
        st.info(f"{measuring} Plan meanwhile: {recipe.summary}.")
        wait_for_speed(config, version, preset, limit)
    else:
        show_recipe(config, recipe)
    return recipe


def few_shot_time(version: DatasetVersion, preset: str, limit: int | None, planned: bool) -> None:
    """How long the few-shot kind will take here, once a worker has measured the speed (the transformer's plan
    waits for the same measurement when it is ticked too)."""
    try:
        seconds = few_shot_estimate(studio, caller, version, preset, limit)
    except (OSError, ValueError) as exc:
        st.warning(f"The model {config.model.name!r} could not be timed for few-shot training: {exc}")
        return
    if seconds is None:
        st.caption("Few-shot's time appears here once a training worker has measured this machine's speed.")
        if not planned:
            wait_for_speed(config, version, preset, limit)
        return
    st.caption(f"Few-shot will take about {duration(seconds)} on this machine start to finish: the sentence "
               "encoder is tuned on the training texts, then a logistic regression reads what it makes of them.")


def start_button(chosen: list[str], version: DatasetVersion, preset: str, limit: int | None,
                 recipe: Recipe | None) -> None:
    """Queue one run per model ticked; they train one after another in the background."""
    if st.button("Start training", type="primary", disabled=not chosen, key="start_training"):
        try:
            started = start_runs(studio, caller, [request_for(kind, version, preset, limit, recipe, config)
                                                  for kind in chosen])
        except RunError as exc:
            st.error(f"Training could not start: {exc}")
        else:
            st.success(f"Started {len(started)} run(s): {', '.join(r.title for r in started)}. "
                       "Progress shows below; you can leave this page meanwhile.")


def live_progress() -> None:
    """Step 3: the runs training now (polled only while something is queued or training), then every run."""
    st.subheader("Training now")
    records = runs(studio, caller)  # read once per poll: the live section and the table below share it
    active = active_runs(studio, caller, records)
    for notice in finished_notices(active):
        st.toast(notice)
        st.session_state.setdefault(FINISHED, []).append(notice)
    if not active and st.session_state.get(POLLING):
        st.session_state[POLLING] = False
        st.rerun()  # the whole page, so the poll stops and the finished runs show everywhere
    if not active:
        st.caption("Nothing is training. Finished runs are listed below.")
    elif not workers_online(studio, caller):
        st.warning("No training worker is running, so queued runs wait. Start one on this or another machine "
                   "sharing the workspace with `python -m core worker` (`make run` starts one beside the app).")
    for notice in st.session_state.pop(FINISHED, []) if not active else []:
        st.success(f"Finished: {notice}")
    for record in active:
        show_run_progress(record)

    st.subheader("All runs")
    if not records:
        st.caption("No runs yet.")
        return
    states = pd.Series([r.state.value for r in records]).value_counts()
    st.caption(f"{len(records)} run(s): " + ", ".join(f"{count} {state}" for state, count in states.items()) + ".")
    st.dataframe(runs_table(records), hide_index=True, width="stretch", column_order=list(RUN_WIDTHS),
                 column_config={column: st.column_config.Column(width=width) for column, width in RUN_WIDTHS.items()})
    if failed := [r for r in records if r.error]:
        with st.expander(f"Why {len(failed)} run(s) did not finish"):
            st.markdown("\n".join(f"- **{plain(r.name)}**: {plain(r.error)}" for r in failed))


actor, config, studio, caller = start_page(
    "pages/views/train.py", Permission.TRAIN, "Train",
    "Pick a saved dataset version and the models to train; they train in the background while "
    "you keep working, and finished runs appear below and on the Evaluate page.")
saved = dataset_versions(studio, caller)
versions = [v for v in saved if not v.unlabelled]
if len(versions) < len(saved):
    st.caption(plain(f"Not listed: {', '.join(v.ref for v in saved if v.unlabelled)}, texts without labels yet — "
                     "discover their topics on the Topics page and save them as labels first."))
if not versions:
    st.info("No dataset yet — upload one on the Data page and save a version, then come back here.")
    st.page_link("pages/views/data.py", label="Go to the Data page", icon=":material/dataset:")
else:
    version = choose_version(versions)
    chosen = choose_models(version)
    preset, limit = choose_preset(chosen)
    planned = any(model_kinds()[kind].plans_recipe for kind in chosen)
    recipe = plan_transformer(version, preset, limit) if planned else None
    if FEW_SHOT in chosen:
        few_shot_time(version, preset, limit, planned)
    start_button(chosen, version, preset, limit, recipe)
st.session_state[POLLING] = bool(active_runs(studio, caller))
st.fragment(run_every=POLL_SECONDS if st.session_state[POLLING] else None)(live_progress)()
