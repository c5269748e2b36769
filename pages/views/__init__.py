"""The pages of the journey, one module per page (Data, Train, Evaluate, Classify, Admin), routed by Home.py's
``st.navigation``. They live below ``pages/`` so Streamlit's own folder scan (``pages/*.py``) finds none of them:
no module name is ever listed as a page before the navigation is built."""
