"""The Topics page: saved texts without labels grouped by a real worker while the page shows progress, the topics
named (one renamed, two merged, one dropped, the left-out texts placed), and the names saved as the labels of a
new version that the Train page then offers."""

from __future__ import annotations

import re

from core.data.dataset_versions import list_dataset_versions
from core.data.ingest import DEMO_DATASET, read_feedback_file
from core.platform.config import load_config
from tests.test_pages import open_page, run_with_worker_until, texts
from tests.test_topic_jobs import save_texts


def test_topics_are_discovered_named_merged_dropped_and_saved_as_labels(isolated_workspace):
    config = load_config()
    rows = read_feedback_file(DEMO_DATASET, 10_000_000).records
    save_texts(isolated_workspace, config, [{"text": r["text"]} for r in rows])
    app = open_page("pages/views/topics.py")
    assert not app.exception, app.exception
    assert app.selectbox(key="topics_version").value == "comments/v1"
    assert "No topics found yet" in texts(app)
    app.radio(key="topics_granularity").set_value("more, narrower")
    app.button(key="discover_topics").click().run()
    assert any("Queued: Topics of comments/v1" in s.value and "(more, narrower)" in s.value
               for s in app.success), texts(app)
    assert "No worker is running" in texts(app)  # said while the discovery waits

    run_with_worker_until(app, isolated_workspace, config, "fit none")
    shown = texts(app)
    assert "topics** in 398 texts" in shown, shown
    before = [box for box in app.text_input if box.key.startswith("topic_name:")]
    # the biggest topics first, until one has finer topics in it (whether a topic of a few dozen texts does
    # varies with the embeddings' last digits): a topic that has none is refused in words
    for split in [b.key for b in app.button if b.key.startswith("split_topic:")][:4]:
        app.button(key=split).click().run()
        assert not app.exception, app.exception
        shown_now = app.selectbox(key="topics_result:comments/v1")
        if "split in" in shown_now.format_func(shown_now.value):
            break
        assert any("Not split:" in e.value and "form no finer topics" in e.value for e in app.error), texts(app)
    assert re.search(r"topic \d+ split in", shown_now.format_func(shown_now.value)), texts(app)
    names = [box for box in app.text_input if box.key.startswith("topic_name:")]
    assert len(names) > len(before) >= 3
    names[0].set_value("delivery")
    names[1].set_value("delivery")  # merged with the first
    keeps = [box for box in app.checkbox if box.key.startswith("topic_keep:")]
    keeps[-1].uncheck()  # dropped
    names[2].set_value("app problems")
    placed = next(box for box in app.checkbox if box.key.startswith("place_left_out:"))
    placed.check()
    app.run()
    assert app.get("plotly_chart"), "the map is drawn"
    app.button(key="save_topic_labels").click().run()
    assert not app.exception, app.exception
    saved = next(s.value for s in app.success if s.value.startswith("Saved comments/v2"))
    assert "labelled from their topics" in saved and "placed in their nearest topic" in saved, saved
    version = [v for v in list_dataset_versions(isolated_workspace) if v.ref == "comments/v2"][0]
    assert "delivery" in version.labels and "app problems" in version.labels
    assert len(version.labels) == len(names) - 2
    assert version.meta["unlabelled_rows"] > 0  # the dropped topic's texts

    train = open_page("pages/views/train.py")
    assert not train.exception, train.exception
    offered = train.selectbox[0].options
    assert "comments/v2" in str(offered) and "comments/v1" not in str(offered)
    assert "Not listed: comments/v1" in texts(train)
