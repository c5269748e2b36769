"""One studio per configuration: the page used to overwrite the shared studio's configuration on every run,
while its queue and published model kept the configuration they were made with."""

from __future__ import annotations

import dataclasses

from pages.common.session import _studio, app_studio


def test_an_edited_configuration_makes_a_new_studio_and_never_changes_the_old_one(config):
    _studio.clear()
    first = app_studio(config)
    assert app_studio(dataclasses.replace(config)) is first  # the same settings: the same studio
    edited = dataclasses.replace(config, classify=dataclasses.replace(config.classify, min_cases_for_rate=3))
    second = app_studio(edited)
    assert second is not first and second.config.classify.min_cases_for_rate == 3
    assert first.config is config and first.config.classify.min_cases_for_rate != 3
    assert second.jobs.config is edited  # the queue sees the settings of the studio it belongs to
    _studio.clear()
