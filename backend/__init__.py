"""Fooling Lab backend: pure Python services behind the Streamlit pages (never imports streamlit)."""

__version__ = "0.1.0"
