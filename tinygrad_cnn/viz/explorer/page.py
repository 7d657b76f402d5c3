"""Writing the explorer page: one HTML file holding its style, its script and the graph's data.

The page's parts live as files in static/ (explorer.html, explorer.css, explorer.js) and are
inlined when a page is written, so the page opens from disk with no server and fetches nothing.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent / "static"
DATA_ELEMENT = "graph-data"  # the id of the <script type="application/json"> holding the data


def page_html(data: dict[str, Any], title: str) -> str:
    """The page for `data` (data.explorer_data's result)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    # inside <script>, "</script>" or "<!--" in a string would end or confuse the element: JSON
    # may spell "<" as \u003c, which never appears outside a string
    text = text.replace("<", "\\u003c")
    parts = {"{{title}}": html.escape(title), "{{style}}": (STATIC / "explorer.css").read_text(encoding="utf-8"),
             "{{script}}": (STATIC / "explorer.js").read_text(encoding="utf-8"), "{{data_id}}": DATA_ELEMENT}
    page = (STATIC / "explorer.html").read_text(encoding="utf-8")
    for placeholder, content in parts.items():
        page = page.replace(placeholder, content)
    return page.replace("{{data}}", text)  # last: the data may hold any text


def read_page_data(page: str) -> dict[str, Any]:
    """The data a page embeds (for tests and tools reading a written page back)."""
    start = page.index(f'<script type="application/json" id="{DATA_ELEMENT}">')
    start = page.index(">", start) + 1
    return json.loads(page[start:page.index("</script>", start)])
