"""Renderers of a Plan (and ApplyResult): terminal text, JSON, and Markdown for PR comments."""

from reconciler.report.jsonout import SCHEMA_VERSION, render_json
from reconciler.report.markdown import render_markdown
from reconciler.report.text import render_text

__all__ = ["SCHEMA_VERSION", "render_json", "render_markdown", "render_text"]
