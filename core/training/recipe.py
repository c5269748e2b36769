"""The transformer's training recipe: hyper-parameters chosen from the data, the preset and this machine.

A preset (:class:`core.platform.config.PresetGoal`) promises a time budget and how thoroughly
to learn. :func:`plan_recipe` reads the data's shape (examples, labels, the smallest
and largest label) and the measured training speed, and chooses batch size, epochs,
class weighting and the rest, each with a reason in plain words. The plan is shown
before training starts and saved in the run's record; a value set by hand (Advanced,
or fixed in the configuration) wins and is recorded as such.

What the choices rest on (measured on CLINC150, 150 intents, and the UCI review
sentences; see the README's *Quality* section): a 6-layer sentence encoder fine-tunes
best at a learning rate of 5e-5 with batches of 32 when it is read through mean
pooling and its head starts from a linear probe; then a few passes over the data
suffice (on CLINC150 3 epochs scored as well as 8), sets with many examples per label
still gain up to the third pass (UCI), and labels with few examples need more passes
than labels with many.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from core.platform.config import Hyperparameters, PresetGoal

#: Below this many training examples batches of 16 give the optimiser enough steps; above, 32 trains faster.
SMALL_SET = 1000
#: Largest/smallest label count from which the loss weighs rare labels more.
IMBALANCE_FOR_WEIGHTS = 3.0
#: Tags: when the rarest tag is on fewer than this share of the texts, each tag's positives weigh more in the loss
#: (otherwise a rare tag's few positives are drowned by its negatives).
RARE_TAG_SHARE = 0.25
#: Loading the data and the model, saving: seconds on top of the rest (measured: 5–6 s on the 2-core CPU).
FIXED_SECONDS = 6.0
#: After training, the validation split is scored once for the metrics and once per serving variant checked
#: (fp32, bf16, onnx-fp32, onnx-int8), and the test split (taken as the validation split's size) once.
SCORING_PASSES = 6
#: Measured speeds are rounded down to one of four steps per doubling, so that the small jitter of
#: repeated measurements on one machine gives the same plan.
SPEED_STEPS_PER_DOUBLING = 4


@dataclass(frozen=True)
class DataProfile:
    """The shape of a training split, as far as the recipe cares."""

    examples: int
    labels: int
    smallest_label: int
    largest_label: int
    validation_examples: int
    #: Median length of the training texts in tokens (special tokens included); 0 when unknown.
    median_tokens: int = 0
    #: Whether the "labels" are tags (a text may carry several; the counts are texts carrying each tag).
    multi_label: bool = False
    #: Tags: how many (text, tag) pairs the training texts carry (0 for one label per text).
    tag_occurrences: int = 0

    @classmethod
    def of(cls, train_labels: Sequence[int], validation_examples: int,
           token_lengths: Sequence[int] = (), examples: int | None = None,
           multi_label: bool = False) -> "DataProfile":
        """The profile of training label ids (for multi-label data, every tag id of every text, with
        ``examples`` the number of texts)."""
        counts = np.bincount(np.asarray(train_labels, dtype=int)) if len(train_labels) else np.zeros(1, int)
        present = counts[counts > 0] if counts.any() else np.zeros(1, int)
        return cls(examples=len(train_labels) if examples is None else examples, labels=int((counts > 0).sum()), smallest_label=int(present.min()),
                   largest_label=int(present.max()), validation_examples=validation_examples,
                   median_tokens=int(np.median(token_lengths)) if len(token_lengths) else 0,
                   multi_label=multi_label, tag_occurrences=len(train_labels) if multi_label else 0)

    @property
    def per_label(self) -> float:
        """Training texts per label (tags: texts carrying each tag, on average)."""
        return (self.tag_occurrences or self.examples) / max(self.labels, 1)

    @property
    def kinds(self) -> str:
        """What the labels are called: tags or labels."""
        return "tags" if self.multi_label else "labels"

    @property
    def imbalance(self) -> float:
        return self.largest_label / max(self.smallest_label, 1)


def speed_band(texts_per_second: float) -> float:
    """The measured speed rounded down to a coarse step (see SPEED_STEPS_PER_DOUBLING)."""
    if texts_per_second <= 0:
        raise ValueError("training speed must be positive")
    steps = math.floor(math.log2(texts_per_second) * SPEED_STEPS_PER_DOUBLING)
    return 2 ** (steps / SPEED_STEPS_PER_DOUBLING)


def estimate_seconds(profile: DataProfile, epochs: float, speed: float, warm_start: bool = True) -> float:
    """Start to finish as the analyst waits for it: each epoch trains once and evaluates once (scoring is
    ~3× faster than training), the probe reads every text once, then testing and saving."""
    per_epoch = profile.examples / speed + profile.validation_examples / (3 * speed)
    probe = (profile.examples + profile.validation_examples) / (3 * speed) if warm_start else 0.0
    return FIXED_SECONDS + probe + epochs * per_epoch + _testing_seconds(profile, speed)


def few_shot_seconds(profile: DataProfile, settings: Any, speed: float) -> float:
    """Start to finish for the few-shot kind (core.models.few_shot; ``settings`` its FewShotSettings) at a
    training speed of ``speed`` texts/s: the encoder tuned on the training texts (contrastive: each text once a
    pass; similarity: two pairs of two texts per text and round), their embeddings read for the head (~3×
    faster than training), then testing and saving."""
    if settings.loss_for(profile.labels) == "contrastive":
        tuned = settings.contrastive_epochs * profile.examples
    else:
        tuned = 4 * settings.pairs_per_text * profile.examples
    return FIXED_SECONDS + tuned / speed + profile.examples / (3 * speed) + _testing_seconds(profile, speed)


def _testing_seconds(profile: DataProfile, speed: float) -> float:
    """Scoring after training: thresholds, validation and test metrics, the serving variants' check."""
    return SCORING_PASSES * profile.validation_examples / (3 * speed)


def _rate(value: float) -> str:
    """A learning rate as people write it: 5e-5, not 5e-05."""
    return f"{value:.0e}".replace("e-0", "e-")


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} seconds" if seconds < 90 else f"{minutes:.0f} minutes"


@dataclass(frozen=True)
class Recipe:
    """The chosen hyper-parameters, why, and how long they should take here."""

    preset: str
    hyperparameters: Hyperparameters
    reasons: tuple[str, ...]
    profile: DataProfile
    budget_s: float
    #: Training texts per second on this machine (rounded to a band); None when not measured.
    speed: float | None = None
    estimate_s: float | None = None
    #: Hyper-parameters set by hand rather than chosen.
    overridden: tuple[str, ...] = ()

    @property
    def over_budget(self) -> bool:
        return self.estimate_s is not None and self.estimate_s > self.budget_s

    @property
    def summary(self) -> str:
        """One line: "150 labels, ~63 examples each: 6 epochs at 1e-4, batch 32, about 9 minutes here"."""
        hp, p = self.hyperparameters, self.profile
        when = f", about {_duration(self.estimate_s)} here" if self.estimate_s is not None else ""
        return (f"{p.labels} {p.kinds}, ~{p.per_label:.0f} examples each: {hp.epochs:g} epoch"
                f"{'' if hp.epochs == 1 else 's'} at {_rate(hp.learning_rate)}, batch {hp.batch_size}{when}")

    def with_overrides(self, chosen: Hyperparameters) -> "Recipe":
        """This plan with the values a person set by hand; they win and are named in the reasons."""
        planned = self.hyperparameters
        # the budget goes with the recipe's epochs; epochs set by hand are trained as set
        fixed = chosen.epochs != planned.epochs
        chosen = dataclasses.replace(chosen, budget_s=0.0 if fixed else planned.budget_s,
                                     max_epochs=0.0 if fixed else planned.max_epochs)
        changed = [f.name for f in dataclasses.fields(Hyperparameters)
                   if f.name not in BUDGET_FIELDS and getattr(chosen, f.name) != getattr(planned, f.name)]
        if not changed:
            return self
        words = ", ".join(f"{name.replace('_', ' ')} {getattr(chosen, name)} (the recipe chose "
                          f"{getattr(self.hyperparameters, name)})" for name in changed)
        estimate = None if self.speed is None else estimate_seconds(self.profile, chosen.epochs, self.speed,
                                                                    chosen.warm_start)
        return dataclasses.replace(self, hyperparameters=dataclasses.replace(chosen),
                                   reasons=self.reasons + (f"Set by hand: {words}.",), estimate_s=estimate,
                                   overridden=tuple(dict.fromkeys(self.overridden + tuple(changed))))

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "summary": self.summary, "hyperparameters": asdict(self.hyperparameters),
                "reasons": list(self.reasons), "profile": asdict(self.profile), "budget_s": self.budget_s,
                "speed_texts_per_s": self.speed, "estimate_s": None if self.estimate_s is None else
                round(self.estimate_s, 1), "over_budget": self.over_budget, "overridden": list(self.overridden)}


#: Hyper-parameters that follow from the recipe's epochs rather than being set on their own.
BUDGET_FIELDS = ("budget_s", "max_epochs")


def _epochs(profile: DataProfile, goal: PresetGoal, batch_size: int) -> tuple[float, str]:
    """Passes over the data: enough views of each label and enough optimiser steps, within the preset's range."""
    steps_per_epoch = max(1, math.ceil(profile.examples / batch_size))
    for_views = goal.views_per_label / max(profile.per_label, 1.0)
    for_steps = goal.min_steps / steps_per_epoch
    wanted = min(max(for_views, for_steps, goal.min_epochs), goal.max_epochs)
    epochs = float(math.ceil(wanted))  # whole epochs: the best one is picked on validation after each
    epochs = min(epochs, goal.max_epochs)
    if for_steps > for_views and for_steps > goal.min_epochs:
        why = f"at least {goal.min_steps} optimisation steps on this small set"
    elif for_views > goal.min_epochs:
        why = f"each {profile.kinds[:-1]} seen about {goal.views_per_label} times in all"
    else:
        why = f"the preset's minimum of {goal.min_epochs:g}"
    if wanted >= goal.max_epochs and max(for_views, for_steps) > goal.max_epochs:
        why += f", capped at the preset's maximum of {goal.max_epochs:g}"
    return epochs, why


def _weighting(profile: DataProfile) -> tuple[bool, str]:
    """Whether the loss weighs rare labels (tags: each tag's positives) more, and why in words ("" for labels
    balanced enough to need nothing said)."""
    if profile.multi_label:
        share = profile.smallest_label / max(profile.examples, 1)
        if share < RARE_TAG_SHARE:
            return True, (f"The rarest tag is on {share:.1%} of the texts: each tag's texts weigh more in the loss "
                          "the rarer the tag (the square root of texts without it over texts with it, at most 10 "
                          "times).")
        return False, f"Every tag is on at least {RARE_TAG_SHARE:.0%} of the texts: no tag is weighed up."
    if profile.imbalance >= IMBALANCE_FOR_WEIGHTS:
        return True, (f"Labels are imbalanced (largest/smallest = {profile.imbalance:.1f}): the loss weighs rare "
                      "labels more.")
    return False, ""


def plan_recipe(profile: DataProfile, preset: str, goal: PresetGoal, speed: float | None = None) -> Recipe:
    """The hyper-parameters for this data, preset and machine speed (texts/s; None: no time cap)."""
    if profile.examples < 1:
        raise ValueError("there are no training examples to plan for")
    if profile.multi_label:
        reasons = [f"{profile.labels} tags on {profile.examples:,} training texts (a text may carry several; the "
                   f"rarest tag is on {profile.smallest_label} texts, the commonest on {profile.largest_label})"
                   + (f", texts of about {profile.median_tokens} tokens." if profile.median_tokens else "."),
                   "Each tag gets its own score, and each tag's threshold is chosen on the validation split after "
                   "training."]
    else:
        reasons = [f"{profile.labels} labels, about {profile.per_label:.0f} training examples each "
                   f"(smallest {profile.smallest_label}, largest {profile.largest_label})"
                   + (f", texts of about {profile.median_tokens} tokens." if profile.median_tokens else ".")]
    if goal.batch_size:
        batch_size = goal.batch_size
        reasons.append(f"Batch size {batch_size}, as set in the configuration.")
    else:
        batch_size = 16 if profile.examples < SMALL_SET else 32
        reasons.append(f"Batch size {batch_size}: " + ("small batches give a small set enough optimiser steps."
                                                       if batch_size == 16 else "fast on a CPU, stable gradients."))
    band = speed_band(speed) if speed else None
    budget_s = goal.time_budget_minutes * 60
    if goal.epochs:
        epochs = goal.epochs
        reasons.append(f"{epochs:g} epochs, as set in the configuration.")
    else:
        epochs, why = _epochs(profile, goal, batch_size)
        reasons.append(f"{epochs:g} epochs: {why}.")
        if band is not None and estimate_seconds(profile, epochs, band) > budget_s:
            per_epoch = estimate_seconds(profile, 1.0, band) - estimate_seconds(profile, 0.0, band)
            fitting = math.floor((budget_s - estimate_seconds(profile, 0.0, band)) / per_epoch)
            epochs = float(max(1, fitting))
            reasons.append(f"Shortened to {epochs:g} epoch(s) to stay within the {goal.time_budget_minutes:g}-minute "
                           f"budget at {band:.0f} texts/s.")
    class_weighted, why_weights = _weighting(profile)
    if why_weights:
        reasons.append(why_weights)
    reasons.append(f"Learning rate {_rate(goal.learning_rate)} with {goal.warmup_ratio:.0%} warm-up; the head starts "
                   "from a linear probe on the frozen mean-pooled features, so fine-tuning starts from the "
                   "frozen model's accuracy.")
    reasons.append(f"Stops early after {goal.early_stopping_patience} epoch(s) without a better validation "
                   f"{'micro' if profile.multi_label else 'macro'}-F1 and keeps the best epoch.")
    fit_budget_s, ceiling = 0.0, 0.0
    if not goal.epochs:  # chosen epochs are a first guess: the run fits them to the budget as it trains
        tail = FIXED_SECONDS + (_testing_seconds(profile, band) if band else 0.0)
        fit_budget_s, ceiling = max(budget_s - tail, 0.0), max(goal.max_epochs, epochs)
        reasons.append(f"After each epoch the epochs are planned again from the speed measured so far: more "
                       f"(up to {ceiling:g}) while they fit in the {goal.time_budget_minutes:g}-minute budget, "
                       f"fewer if the machine is slower than measured here.")
    hyper = Hyperparameters(batch_size=batch_size, epochs=epochs, learning_rate=goal.learning_rate,
                            weight_decay=goal.weight_decay, warmup_ratio=goal.warmup_ratio,
                            early_stopping_patience=goal.early_stopping_patience, class_weighted=class_weighted,
                            budget_s=fit_budget_s, max_epochs=ceiling)
    estimate = None if band is None else estimate_seconds(profile, epochs, band)
    if estimate is not None:
        over = " — more than the budget" if estimate > budget_s else ""
        reasons.append(f"About {_duration(estimate)} on this machine ({band:.0f} training texts/s){over}.")
    return Recipe(preset, hyper, tuple(reasons), profile, budget_s, band, estimate)


#: Below this many training texts in the smallest label, the few-shot kind is ticked (contrastive tuning is made
#: for a handful per label; the fine-tuned transformer needs more to beat frozen embeddings).
FEW_SHOT_BELOW = 16
FEW_SHOT_KIND = "few_shot"


@dataclass(frozen=True)
class KindChoice:
    """The model kinds ticked for a dataset, and why in words ('' when the usual ones)."""

    kinds: tuple[str, ...]
    reason: str = ""


def choose_kinds(profile: DataProfile, usual: Sequence[str]) -> KindChoice:
    """The usual kinds, plus few-shot when the smallest label has fewer than FEW_SHOT_BELOW training texts
    (one label per text: the few-shot kind does not tag)."""
    if profile.multi_label or profile.smallest_label >= FEW_SHOT_BELOW:
        return KindChoice(tuple(usual))
    return KindChoice(tuple(dict.fromkeys([*usual, FEW_SHOT_KIND])), (
        f"The smallest label has {profile.smallest_label} training texts (fewer than {FEW_SHOT_BELOW}), so the "
        f"few-shot model is ticked too: it first learns from pairs of your texts which belong together, which "
        f"is what works with a handful per label."))
