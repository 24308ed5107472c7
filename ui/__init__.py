"""Streamlit-only helpers shared by the pages: cached resources, forms, charts and state keys."""
