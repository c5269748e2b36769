"""The Label page: a draft labelled in part from topics is labelled a batch at a time from the model's guesses
(one text skipped, one guess corrected); at ``retrain_every`` labels the next version is saved and a model
trained on it by a real worker, whose guesses then take over and whose score starts the learning curve."""

from __future__ import annotations

from core.data.dataset_versions import load_dataset_version
from tests.test_labelling import save_draft
from tests.test_pages import open_page, run_with_worker_until, texts

SKIP = "— skip (not sure / none fits) —"


def save_batch(app):
    next(b for b in app.button if b.label.startswith("Save these")).click().run()
    assert not app.exception, app.exception
    return app


def test_a_batch_is_labelled_from_the_guesses_and_every_ten_labels_retrain_a_model(isolated_workspace, config_file,
                                                                                    tiny_bert):
    config = config_file(f'[model]\nname = "{tiny_bert}"\n[labelling]\nbatch = 5\nretrain_every = 10\n'
                         'retrain_kind = "tfidf_logreg"\n')
    version, _ = save_draft(isolated_workspace, config)
    app = open_page("pages/views/label.py")
    assert not app.exception, app.exception
    assert app.selectbox(key="label_version").value == "comments/v2"
    shown = texts(app)
    assert "Guesses by: Zero-shot by the label names" in shown and "0 from people" in shown, shown
    app.text_input(key=f"describe:comments/v2:{version.labels[0]}").set_value("the app or the website")
    next(b for b in app.button if b.label == "Save descriptions").click().run()
    assert "Saved descriptions of 1 label(s)" in texts(app), texts(app)
    assert "Guesses by: Zero-shot by the label names and their descriptions" in texts(app)
    boxes = [box for box in app.selectbox if box.key.startswith("label:comments/v2:")]
    assert len(boxes) == 5 and all(box.value in version.labels for box in boxes)
    boxes[0].set_value(SKIP)
    corrected = int(boxes[1].key.rsplit(":", 1)[1])
    boxes[1].set_value(next(label for label in version.labels if label != boxes[1].value))
    wanted = boxes[1].value
    save_batch(app)
    assert "Kept 4 label(s), 1 skipped." in texts(app), texts(app)
    assert "4 label(s) kept on comments/v2" in texts(app)
    asked = {int(box.key.rsplit(":", 1)[1]) for box in app.selectbox if box.key.startswith("label:")}
    assert corrected not in asked and len(asked) == 5  # the next batch: other texts

    save_batch(app)  # 9 kept
    save_batch(app)  # 14: saved as comments/v3, a model queued on it
    shown = texts(app)
    assert "Saved comments/v3 with the labels people gave, and queued TF-IDF + logistic regression" in shown, shown
    assert app.selectbox(key="label_version").value == "comments/v3"
    assert "No worker is running, so the retrain waits" in shown
    saved = load_dataset_version(isolated_workspace, "comments/v3").frame().set_index("line")
    assert saved.loc[corrected, "label"] == wanted and saved.loc[corrected, "label_source"] == "person"
    assert (saved["label_source"] == "person").sum() == 14

    on_screen = {box.key for box in app.selectbox if box.key.startswith("label:")}
    run_with_worker_until(app, isolated_workspace, config, "The retrained model has finished")
    assert {box.key for box in app.selectbox if box.key.startswith("label:")} == on_screen  # not swapped under them
    assert "Guesses by: Zero-shot" in texts(app)
    assert app.get("plotly_chart"), "the learning curve is drawn"
    save_batch(app)
    assert "Guesses by: TF-IDF + logistic regression" in texts(app), texts(app)
    app.button(key="label_save_now").click().run()
    assert "Saved comments/v4 and queued TF-IDF + logistic regression on it." in texts(app), texts(app)


def test_a_label_added_on_the_page_is_offered_for_every_text_and_refused_in_words_when_it_exists(
        isolated_workspace, config_file, tiny_bert):
    config = config_file(f'[model]\nname = "{tiny_bert}"\n[labelling]\nbatch = 5\n')
    version, _ = save_draft(isolated_workspace, config)
    app = open_page("pages/views/label.py")
    app.text_input(key="new_label:comments/v2").set_value(version.labels[0].title())
    next(b for b in app.button if b.label == "Add the label").click().run()
    assert f"Not added: '{version.labels[0].title()}' is already a label" in texts(app), texts(app)
    app.text_input(key="new_label:comments/v2").set_value("gift cards")
    next(b for b in app.button if b.label == "Add the label").click().run()
    assert not app.exception, app.exception
    assert "Added the label 'gift cards'" in texts(app), texts(app)
    boxes = [box for box in app.selectbox if box.key.startswith("label:comments/v2:")]
    assert all(box.options == [*version.labels, "gift cards", SKIP] for box in boxes)
    boxes[0].set_value("gift cards")
    save_batch(app)
    assert "Kept 5 label(s)." in texts(app), texts(app)
    assert app.text_input(key="describe:comments/v2:gift cards") is not None  # it can be described too
