"""Page tests through Streamlit's AppTest: the real scripts, run headless."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.dataset_versions import list_dataset_versions
from tests.conftest import PROJECT_ROOT

TIMEOUT = 120


def open_page(page: str | None = None) -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
    app.run()
    if page:
        app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    """Everything a person would read on the page, as one string."""
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "success", "warning", "error")
             for e in getattr(app, kind)]
    return "\n".join(str(p) for p in parts)


def test_home_renders_with_an_empty_workspace():
    app = open_page()
    assert app.title[0].value == "Feedback Studio"
    assert "No dataset yet" in texts(app)


def test_data_page_loads_the_demo_set_reports_and_saves_a_version(isolated_workspace):
    app = open_page("pages/data.py")
    assert "No file yet" in texts(app)
    app.button(key="load_demo").click().run()
    assert not app.exception, app.exception
    page = texts(app)
    assert "records read as JSONL" in page
    assert "rows read" in page  # the report's summary line
    assert app.selectbox[0].value == "text" and app.selectbox[1].value == "label"

    app.text_input[0].set_value("demo-feedback")
    app.button(key="save_version").click().run()
    assert not app.exception, app.exception
    assert any("Saved demo-feedback/v1" in s.value for s in app.success)
    versions = list_dataset_versions(isolated_workspace)
    assert [v.ref for v in versions] == ["demo-feedback/v1"]
    assert versions[0].meta["rows"] >= 300 and len(versions[0].labels) == 5

    home = open_page()
    assert "Latest dataset: demo-feedback/v1" in texts(home)
