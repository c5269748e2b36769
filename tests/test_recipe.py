"""The training recipe: chosen from the data, the preset's goal and the machine's speed; hand-set values win."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.platform.config import ConfigError, Hyperparameters, PresetGoal, load_config
from core.training.recipe import DataProfile, plan_recipe, speed_band
from core.training.runs import RunRequest, create_run, run_folder
from core.training.execution import plan_for_version
from tests.conftest import ANALYST, save_demo_version

BALANCED = PresetGoal()


def profile(labels: int, per_label: int, smallest: int | None = None, validation: int = 100) -> DataProfile:
    counts = [per_label] * labels
    if smallest is not None:
        counts[0] = smallest
    train_labels = [label for label, count in enumerate(counts) for _ in range(count)]
    return DataProfile.of(train_labels, validation, [12] * len(train_labels))


def steps(recipe) -> float:
    hp = recipe.hyperparameters
    return hp.epochs * -(-recipe.profile.examples // hp.batch_size)


def test_fewer_examples_per_label_get_more_passes_and_more_labels_more_steps():
    many_each = plan_recipe(profile(10, 1000), "balanced", BALANCED)
    few_each = plan_recipe(profile(10, 60), "balanced", BALANCED)
    assert few_each.hyperparameters.epochs > many_each.hyperparameters.epochs
    more_labels = plan_recipe(profile(150, 60), "balanced", BALANCED)
    assert steps(more_labels) > steps(few_each)
    assert more_labels.hyperparameters.epochs == few_each.hyperparameters.epochs  # same examples per label


def test_a_tiny_set_gets_a_short_plan_with_enough_steps():
    recipe = plan_recipe(profile(2, 20), "balanced", BALANCED, speed=50.0)
    hp = recipe.hyperparameters
    assert hp.batch_size == 16 and hp.epochs <= BALANCED.max_epochs
    assert recipe.estimate_s is not None and recipe.estimate_s < 120
    assert "2 labels" in recipe.summary and "epochs" in recipe.summary


def test_the_time_budget_shortens_the_plan_and_says_so():
    unhurried = plan_recipe(profile(150, 60), "balanced", BALANCED, speed=1000.0)
    slow = plan_recipe(profile(150, 60), "balanced", BALANCED, speed=20.0)
    assert slow.hyperparameters.epochs < unhurried.hyperparameters.epochs
    assert any("budget" in reason for reason in slow.reasons)
    assert slow.estimate_s <= slow.budget_s or slow.hyperparameters.epochs == 1


def test_quick_plans_less_than_balanced_and_thorough_more():
    data = profile(150, 60)
    config = load_config(environ={})
    plans = {name: plan_recipe(data, name, config.training.goal(name), speed=200.0) for name in
             ("quick", "balanced", "thorough")}
    epochs = [plans[name].hyperparameters.epochs for name in ("quick", "balanced", "thorough")]
    assert epochs == sorted(epochs) and epochs[0] < epochs[2]
    assert plans["quick"].estimate_s <= 6 * 60 and plans["balanced"].estimate_s <= 20 * 60


def test_imbalanced_labels_turn_on_class_weights():
    assert plan_recipe(profile(5, 100, smallest=10), "balanced", BALANCED).hyperparameters.class_weighted
    assert not plan_recipe(profile(5, 100), "balanced", BALANCED).hyperparameters.class_weighted


def test_values_set_by_hand_win_and_are_recorded():
    recipe = plan_recipe(profile(150, 60), "balanced", BALANCED, speed=200.0)
    mine = dataclasses.replace(recipe.hyperparameters, epochs=2.0, pooling="cls")
    final = recipe.with_overrides(mine)
    # epochs set by hand are trained as set: no re-planning against the budget
    assert final.hyperparameters == dataclasses.replace(mine, budget_s=0.0, max_epochs=0.0)
    assert set(final.overridden) == {"epochs", "pooling"}
    assert "Set by hand" in final.reasons[-1] and final.estimate_s < recipe.estimate_s
    assert recipe.with_overrides(dataclasses.replace(recipe.hyperparameters)) is recipe


def test_values_fixed_in_the_configuration_are_taken_as_they_are():
    fixed = dataclasses.replace(BALANCED, epochs=3.0, batch_size=8)
    recipe = plan_recipe(profile(150, 60), "balanced", fixed, speed=5.0)  # far over budget: still 3 epochs
    assert (recipe.hyperparameters.epochs, recipe.hyperparameters.batch_size) == (3.0, 8)
    assert recipe.over_budget


def test_same_data_and_speed_band_give_the_same_recipe():
    data = profile(150, 60)
    assert speed_band(100.0) <= 100.0 < speed_band(100.0) * 2 ** 0.25
    first = plan_recipe(data, "balanced", BALANCED, speed=101.0)
    again = plan_recipe(data, "balanced", BALANCED, speed=102.0)  # measurement jitter within one band
    assert first == again


def test_bad_hyperparameters_are_refused_with_their_name():
    with pytest.raises(ConfigError, match="pooling"):
        Hyperparameters(pooling="max")
    with pytest.raises(ConfigError, match="training.quick"):
        from core.platform.config import AppConfig

        config = AppConfig()
        config.training.quick.max_epochs = 0.5
        config.validate()


def test_the_run_record_keeps_the_recipe_with_its_reasons(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    recipe = plan_for_version(version, "balanced", config, speed=150.0)
    assert recipe.profile.labels == len(version.labels) and recipe.profile.median_tokens > 3
    hand = dataclasses.replace(recipe.hyperparameters, learning_rate=3e-5)
    record = create_run(isolated_workspace, RunRequest(version.ref, "transformer", "balanced", hand, recipe=recipe),
                        config, ANALYST)
    saved = json.loads((run_folder(isolated_workspace, record.run_id) / "run.json").read_text())
    assert saved["recipe"]["overridden"] == ["learning_rate"]
    assert saved["recipe"]["hyperparameters"]["learning_rate"] == 3e-5 == saved["hyperparameters"]["learning_rate"]
    assert saved["recipe"]["reasons"] and saved["recipe"]["estimate_s"] > 0


def test_the_speed_is_timed_on_a_batch_of_typical_lengths():
    from core.models.transformer import typical_batch

    texts = ["word " * n for n in range(1, 401)]  # 1 to 400 words
    batch = typical_batch(texts, 16)
    lengths = sorted(len(t.split()) for t in batch)
    assert len(batch) == 16 and 100 < lengths[0] and lengths[-1] < 300  # neither the shortest nor the longest
    assert len(typical_batch(["short", "texts"], 16)) == 16  # fewer texts than a batch: repeated


def test_the_speed_is_measured_by_a_worker_once_per_question_never_by_the_asker(isolated_workspace, config):
    """The Train page's estimate loaded the transformer and ran optimiser steps in the web server; now it asks
    and a worker answers (one of several takes each question), once."""
    from core.training.speed import SpeedError, SpeedQuestion, answer_questions, ask_speed

    question = SpeedQuestion("some-model", 64, 16, ("a text", "another text"))
    assert ask_speed(isolated_workspace, question) is None  # asked: no answer yet, and the asker measured nothing
    assert ask_speed(isolated_workspace, question) is None
    seen = []

    def measure(run_config, texts, batch_size) -> float:
        seen.append((run_config.model.name, run_config.model.max_length, texts, batch_size))
        return 42.0

    assert answer_questions(isolated_workspace, config, measure) == 1
    assert seen == [("some-model", 64, ["a text", "another text"], 16)]  # the question's model, not the worker's
    assert ask_speed(isolated_workspace, question) == 42.0
    assert answer_questions(isolated_workspace, config, measure) == 0 and len(seen) == 1  # kept, not measured again

    def broken(run_config, texts, batch_size) -> float:
        raise OSError("no such model")

    bad = SpeedQuestion("missing-model", 64, 16, ("a text",))
    ask_speed(isolated_workspace, bad)
    answer_questions(isolated_workspace, config, broken)
    with pytest.raises(SpeedError, match="OSError: no such model"):
        ask_speed(isolated_workspace, bad)


def test_a_tagged_versions_recipe_speaks_of_tags(isolated_workspace, config):
    from core.accounts.auth import command_line_actor
    from core.data.ingest import records_from_list
    from core.data.split import SplitPlan
    from core.data.tag_preparation import prepare_tags, save_tag_preparation
    from core.data.tags import detect_task
    from core.training.execution import plan_for_version
    from tests.test_tags import ticket_rows

    table = records_from_list(ticket_rows(120), source="tickets.csv")
    version = save_tag_preparation(isolated_workspace, "tickets", prepare_tags(
        table, "ticket", detect_task(table, "tags").format, config), SplitPlan(0.8, 0.1, 0.1, 3), command_line_actor())
    recipe = plan_for_version(version, "balanced", config)
    assert recipe.summary.startswith("4 tags, ~") and recipe.profile.multi_label
    assert recipe.reasons[0].startswith(f"4 tags on {recipe.profile.examples:,} training texts (a text may carry")
    assert "each tag's threshold is chosen on the validation split" in recipe.reasons[1]


def test_a_tag_recipe_counts_texts_per_tag_weighs_rare_tags_and_keeps_the_best_micro_f1_epoch(config):
    """Tags: a text carries several, so "examples each" counts the texts carrying each tag; a tag on few of the
    texts gets its positives weighed up, said with its share; the best epoch is the one of best micro-F1."""
    goal = config.training.goal("balanced")
    flat = [tag for text in range(6000) for tag in ([text % 150, (text + 1) % 150] if text % 2 else [text % 150])]
    rare = plan_recipe(DataProfile.of(flat, 700, [16] * 100, examples=6000, multi_label=True), "balanced", goal)
    assert rare.profile.per_label == pytest.approx(len(flat) / 150)  # 60 texts per tag, not 6000 / 150
    words = " ".join(rare.reasons)
    assert "each tag seen about" in words and "each label" not in words and "Labels are" not in words
    assert rare.hyperparameters.class_weighted and "The rarest tag is on 0.7% of the texts" in words
    assert "without a better validation micro-F1" in words and "macro-F1" not in words

    common = [tag for text in range(600) for tag in ([0, 1] if text % 3 else [0])]
    even = plan_recipe(DataProfile.of(common, 60, examples=600, multi_label=True), "balanced", goal)
    assert not even.hyperparameters.class_weighted
    assert "Every tag is on at least 25% of the texts: no tag is weighed up" in " ".join(even.reasons)


def test_few_shot_is_ticked_with_its_reason_when_the_smallest_label_has_a_handful_of_texts():
    from core.training.recipe import FEW_SHOT_BELOW, choose_kinds

    usual = ("tfidf_logreg", "embedding_logreg")
    few = DataProfile.of([0] * 40 + [1] * (FEW_SHOT_BELOW - 1), 10)
    chosen = choose_kinds(few, usual)
    assert chosen.kinds == (*usual, "few_shot")
    assert f"smallest label has {FEW_SHOT_BELOW - 1} training texts" in chosen.reason
    assert choose_kinds(DataProfile.of([0] * 40 + [1] * FEW_SHOT_BELOW, 10), usual).kinds == usual
    tags = DataProfile.of([0] * 40 + [1] * 3, 10, examples=40, multi_label=True)
    assert choose_kinds(tags, usual) == type(chosen)(usual)  # the few-shot kind does not tag


def test_chosen_epochs_carry_the_budget_to_plan_again_while_training_and_say_so():
    recipe = plan_recipe(profile(150, 60), "balanced", BALANCED, speed=20.0)
    hp = recipe.hyperparameters
    assert hp.max_epochs == BALANCED.max_epochs > hp.epochs
    # the fit's share of the budget: all of it but the fixed costs and the testing after training
    assert 0 < hp.budget_s < recipe.budget_s
    assert any("planned again" in reason for reason in recipe.reasons)
    # another value set by hand keeps the budget; the budget fields are never named as set by hand
    kept = recipe.with_overrides(dataclasses.replace(hp, learning_rate=1e-4))
    assert (kept.hyperparameters.budget_s, kept.hyperparameters.max_epochs) == (hp.budget_s, hp.max_epochs)
    assert kept.overridden == ("learning_rate",)
    # a page that builds its own copy without the budget fields still gets the recipe's budget
    bare = Hyperparameters(**{f.name: getattr(hp, f.name) for f in dataclasses.fields(hp)
                              if f.name not in ("budget_s", "max_epochs")})
    assert recipe.with_overrides(bare) is recipe


def test_epochs_fixed_in_the_configuration_are_not_planned_again():
    recipe = plan_recipe(profile(150, 60), "balanced", dataclasses.replace(BALANCED, epochs=3.0), speed=20.0)
    assert recipe.hyperparameters.budget_s == 0.0


def test_the_few_shot_estimate_counts_the_texts_its_tuning_reads():
    from core.models.few_shot import FewShotSettings
    from core.training.recipe import few_shot_seconds

    many = DataProfile(examples=400, labels=50, smallest_label=8, largest_label=8, validation_examples=100)
    settings = FewShotSettings()
    seconds = few_shot_seconds(many, settings, speed=100.0)
    # 15 contrastive passes over 400 texts at 100 texts/s: 60 s, plus reading and testing
    assert 60 < seconds < 80
    assert few_shot_seconds(many, dataclasses.replace(settings, contrastive_epochs=30.0), 100.0) > seconds + 55
    assert few_shot_seconds(many, settings, 200.0) < seconds / 1.8  # twice the speed: about half the time
    two = dataclasses.replace(many, labels=2)  # two labels: SetFit's pairs, 20 rounds of two pairs per text
    assert few_shot_seconds(two, settings, 100.0) > 4 * 20 * 400 / 100
