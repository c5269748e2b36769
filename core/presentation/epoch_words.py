"""How a transformer run's epochs went against its plan, in words: the plan, each re-plan, and what ended it."""

from __future__ import annotations

from typing import Any


def _epochs(count: float) -> str:
    return f"{count:g} epoch{'' if count == 1 else 's'}"


def end_of_training(fit_info: dict[str, Any]) -> str:
    """What ended training, as the end of a sentence that starts "Trained 4 epochs"."""
    plan = fit_info.get("epoch_plan")
    if fit_info.get("stopped_early"):
        return ": then validation stopped improving and early stopping ended it (the best epoch is kept)"
    if not plan:
        return ", as set"
    if plan["epochs_after_replanning"] >= plan["epoch_ceiling"]:
        return ", the preset's maximum"
    return ", as many as the time budget allowed"


def epochs_in_words(fit_info: dict[str, Any]) -> str:
    """One or two sentences: "Planned 2 epochs; a quarter into the first, the speed measured here allowed 5.
    Trained 4 epochs: then validation stopped improving …" ("" for a model without epochs)."""
    if fit_info.get("epochs_run") is None:
        return ""
    plan = fit_info.get("epoch_plan")
    ran = f"Trained {_epochs(round(fit_info['epochs_run'], 2))}{end_of_training(fit_info)}."
    if not plan:
        return ran
    changes = [f"{'during' if change['at_epoch'] < 1 else 'after'} epoch {max(1, round(change['at_epoch'])):g}, at "
               f"{change['seconds_per_epoch']:.0f} s an epoch, {change['epochs']}"
               for change in plan["replans"]]
    planned = f"Planned {_epochs(plan['epochs_planned'])} for a budget of {plan['budget_s'] / 60:.0f} minutes"
    if not changes:
        return f"{planned}; the speed measured while training kept that plan. {ran}"
    return f"{planned}; planned again from the speed measured while training: {'; '.join(changes)}. {ran}"
