"""Labels come from uploaded files: Markdown or HTML in them must show as written on every page."""

from __future__ import annotations

import pytest

import re

from core.data.cleaning import CleaningOptions
from core.serving.feedback import record_feedback
from core.data.ingest import records_from_list
from core.data.preparation import prepare, save_preparation
from core.serving.publishing import publish
from core.data.split import SplitPlan
from tests.conftest import ANALYST, USER, train_runs, workspace_store
from tests.test_pages import open_page

IMAGE = "![t](http://host.invalid/x.png)"
LINK = "[click me](http://host.invalid/)"
#: Markdown that would make the browser fetch or link somewhere, when not escaped.
ACTIVE_MARKDOWN = re.compile(r"(?<!\\)!?(?<!\\)\[[^\]]*(?<!\\)\]\(http")


def shown_text(app) -> list[str]:
    """The Markdown source of everything drawn as Markdown (text, captions, alerts, help texts aside)."""
    kinds = ("markdown", "caption", "info", "success", "warning", "error", "title", "subheader")
    return [str(e.value) for kind in kinds for e in getattr(app, kind)]


@pytest.mark.slow
def test_hostile_labels_are_escaped_on_every_page(isolated_workspace, config):
    """Evaluate's 'never predicted' warning rendered a label as a Markdown image: the browser fetched it."""
    rows = [{"text": f"parcel {i} arrived late again", "label": "late"} for i in range(40)]
    rows += [{"text": f"refund {i} still missing on my card", "label": LINK} for i in range(40)]
    # worded like "late": never predicted, so Evaluate names it in its "never predicted" warning
    rows += [{"text": f"parcel {100 + i} arrived late again", "label": IMAGE} for i in range(12)]
    prepared = prepare(records_from_list(rows), "text", "label", CleaningOptions(), config)
    version = save_preparation(isolated_workspace, "hostile", prepared, SplitPlan.from_config(config.split), ANALYST)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    publish(isolated_workspace, run.run_id, ANALYST)
    record_feedback(workspace_store(isolated_workspace), USER, run.run_id, version.labels, "box was broken",
                    "late", 0.5, IMAGE)

    pages = {"Home": open_page(), "Data": open_page("pages/views/data.py"), "Train": open_page("pages/views/train.py"),
             "Evaluate": open_page("pages/views/evaluate.py"),
             "Classify": open_page("pages/views/classify.py", as_user="uma", role="user"),
             "Admin": open_page("pages/views/admin.py", as_user="root", role="admin")}
    classify = pages["Classify"]
    classify.text_area(key="single_text").input("item broken in the box")
    classify.button(key="classify_text").click().run()
    for name, app in pages.items():
        assert not app.exception, (name, app.exception)
        leaks = [text for text in shown_text(app) if ACTIVE_MARKDOWN.search(text)]
        assert not leaks, (name, leaks)
    evaluate = "\n".join(shown_text(pages["Evaluate"]))
    assert "never predicted" in evaluate.lower(), evaluate  # the warning that leaked, shown (escaped)
