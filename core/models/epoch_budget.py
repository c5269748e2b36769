"""Epochs planned again as training runs: after every epoch the number of epochs is fitted to the time budget
at the speed the run has actually shown.

The recipe plans the epochs before the start from a short speed probe; a moment of load on the machine can skew
that probe either way. So the plan is only a first guess: once the warm-up is over, and again at the end of each
epoch, the seconds an epoch really takes (its training plus the evaluation and checkpoint after it) decide how
many epochs fit in what is left of the budget, up to the preset's maximum — more when the machine proved faster
than the probe, fewer when slower.
Early stopping still ends training when validation stops improving, and the best epoch is kept, so spending the
budget never costs accuracy on validation. The learning rate decays linearly to zero at the end of the epochs
planned *now*, so a longer plan stretches the decay rather than ending it early.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

#: An evaluation pass reads each validation text once, about this many times faster than a training step does.
SCORING_SPEEDUP = 3.0


def epochs_that_fit(done: float, elapsed_s: float, epoch_s: float, pending_s: float, budget_s: float,
                    ceiling: int) -> int:
    """The whole epochs to train in all, ``done`` of them (a fraction mid-epoch) behind: as many as fit in the
    budget's remaining seconds (after ``pending_s`` still owed for the epoch just ended), never fewer than the
    epoch under way, never more than the ceiling."""
    fitting = math.floor(done + (budget_s - elapsed_s - pending_s) / epoch_s) if epoch_s > 0 else 0
    return max(math.ceil(done), 1, min(ceiling, fitting))


#: The first re-plan comes after this many optimisation steps at the least (or at the end of the warm-up, when
#: later): enough steps to time, early enough that the learning rate has barely begun to decay.
FIRST_REPLAN_STEPS = 3


@dataclass
class EpochPlan:
    """What the learning-rate schedule and the re-planning callback share while a run trains."""

    epochs: int
    ceiling: int
    budget_s: float
    started: float
    train_examples: int
    validation_examples: int
    warmup_ratio: float = 0.0
    steps_per_epoch: int = 0
    warmup_steps: int = 0
    first_epochs: int = 0
    #: One entry per change: at which epoch (a fraction during the first), the seconds an epoch took, and the new number of epochs.
    replans: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.first_epochs = self.first_epochs or self.epochs

    def start(self, steps_per_epoch: int) -> None:
        """Fix the steps of one epoch and the warm-up (a share of the first plan's steps)."""
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.warmup_steps = math.ceil(self.warmup_ratio * self.epochs * self.steps_per_epoch)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def factor(self, step: int) -> float:
        """The learning rate's share at an optimisation step: linear warm-up, then linear decay to zero at the
        end of the epochs planned now."""
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))

    def summary(self) -> dict[str, Any]:
        return {"epochs_planned": self.first_epochs, "epochs_after_replanning": self.epochs,
                "epoch_ceiling": self.ceiling, "budget_s": round(self.budget_s, 1), "replans": self.replans}


def _agreed(value: int) -> int:
    """The value of the first process when training runs in several (every process must stop at the same
    epoch); the value itself in one process."""
    import torch

    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return value
    shared = torch.tensor([value], dtype=torch.long)
    torch.distributed.broadcast(shared, src=0)
    return int(shared.item())


def budget_callback(plan: EpochPlan, clock: Callable[[], float] = time.monotonic):
    """A TrainerCallback that plans the epochs again after the warm-up and at the end of each epoch (see the
    module's docstring)."""
    from transformers import TrainerCallback

    class SpendTheBudget(TrainerCallback):
        def __init__(self) -> None:
            self.began = self.ended = self.first_step = 0.0
            self.training: list[float] = []  # seconds each epoch trained
            self.after: list[float] = []  # seconds each epoch's evaluation and checkpoint took

        def replan(self, state, done: float, epoch_s: float, pending_s: float) -> None:
            total = _agreed(epochs_that_fit(done, clock() - plan.started, epoch_s, pending_s, plan.budget_s,
                                            plan.ceiling))
            if total != plan.epochs:
                plan.replans.append({"at_epoch": round(done, 2), "seconds_per_epoch": round(epoch_s, 1),
                                     "epochs": total, "was": plan.epochs})
                plan.epochs = total
                state.max_steps = plan.total_steps

        def evaluation_s(self, trained_s: float) -> float:
            """Seconds of the evaluation and checkpoint after an epoch: as measured, or estimated before any."""
            if self.after:
                return statistics.fmean(self.after)
            return trained_s * plan.validation_examples / max(plan.train_examples, 1) / SCORING_SPEEDUP

        def on_train_begin(self, args, state, control, **kwargs):
            state.max_steps = plan.total_steps  # progress and the stop follow the plan, not the ceiling

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.began = clock()
            if self.ended:
                self.after.append(self.began - self.ended)

        def on_step_end(self, args, state, control, **kwargs):
            """The first re-plan, once the warm-up is over: the learning rate is at its peak whatever the
            length, so changing the length changes nothing already done."""
            step = state.global_step
            if step == 1:
                self.first_step = clock()  # the first step pays for allocation: timed from its end
            first = max(plan.warmup_steps, FIRST_REPLAN_STEPS)
            if step == first and first < plan.steps_per_epoch and not self.training:
                trained = (clock() - self.first_step) / (step - 1) * plan.steps_per_epoch
                self.replan(state, step / plan.steps_per_epoch, trained + self.evaluation_s(trained), 0.0)

        def on_epoch_end(self, args, state, control, **kwargs):
            self.ended = clock()
            self.training.append(self.ended - self.began)
            done = round(state.epoch or 0)
            trained = statistics.fmean(self.training)
            after = self.evaluation_s(trained)
            self.replan(state, done, trained + after, after)
            control.should_training_stop = control.should_training_stop or done >= plan.epochs  # keep a stop asked for

    return SpendTheBudget()


def budget_trainer(plan: EpochPlan | None):
    """The Trainer class to use: the library's own without a budget; with one, a Trainer whose learning rate
    follows ``plan`` (its length may change while training runs)."""
    from transformers import Trainer

    if plan is None:
        return Trainer

    class BudgetTrainer(Trainer):
        def create_scheduler(self, num_training_steps: int, optimizer=None):
            if self.lr_scheduler is None:
                from torch.optim.lr_scheduler import LambdaLR

                plan.start(round(num_training_steps / plan.ceiling))
                self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lambda step: plan.factor(step))
            return self.lr_scheduler

    return BudgetTrainer
