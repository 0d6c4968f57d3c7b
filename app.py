"""Fooling Lab in the browser: the page router and the sidebar every page shares.

Adding a page is one line in `PAGES`. A listed file that is not there yet (another area's page) is
skipped, so the router never breaks while pages land.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages._ui import ROUTED_KEY, sidebar_status

ROOT = Path(__file__).resolve().parent

# (file, title, icon, default page?)
PAGES: list[tuple[str, str, str, bool]] = [
    ("pages/home.py", "Demo", ":material/school:", True),
    ("pages/inspect.py", "Inspect", ":material/image_search:", False),
    ("pages/fool.py", "Fool", ":material/tune:", False),
    ("pages/jobs.py", "Jobs", ":material/pending_actions:", False),
    ("pages/evaluate.py", "Evaluate", ":material/analytics:", False),
    ("pages/models.py", "Models", ":material/inventory_2:", False),
    ("pages/detect.py", "Detect", ":material/policy:", False),
    ("pages/decoys.py", "Decoys", ":material/shield:", False),
    ("pages/defend.py", "Defend", ":material/health_and_safety:", False),
    ("pages/tabular.py", "Tabular", ":material/table_chart:", False),
]

st.set_page_config(page_title="Fooling Lab", page_icon=":material/visibility:", layout="wide")
page = st.navigation(
    [
        st.Page(path, title=title, icon=icon, default=default)
        for path, title, icon, default in PAGES
        if (ROOT / path).is_file()
    ]
)
st.session_state[ROUTED_KEY] = True
sidebar_status()
page.run()
