"""What the self-contained pages (the sales-ops report and the monitoring page) share:
their style sheet, figures as embedded PNG, and tables."""

from __future__ import annotations

import base64
import html
import io

import pandas as pd

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:980px;margin:2em auto;
color:#1d2733;line-height:1.45;padding:0 1em}
h1{font-size:1.7em;margin-bottom:.1em}h2{margin-top:1.6em;border-bottom:2px solid #e3e8ef}
.sub{color:#5b6b7d}.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{flex:1 1 200px;border:1px solid #dbe2ea;border-radius:8px;padding:.7em .9em}
.card b{font-size:1.6em;display:block}.card span{color:#5b6b7d;font-size:.9em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border-bottom:1px solid #e3e8ef;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f7fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%}.warn{background:#fff4e0;border-left:4px solid #f0a030;padding:.5em .8em}
details{margin:.3em 0}summary{cursor:pointer;font-weight:600}
"""


def figure_png(fig, alt: str) -> str:
    """A figure as an embedded image; ``alt`` says what it shows, for a reader who cannot
    see it."""
    fig.tight_layout()
    return png_img(figure_bytes(fig), alt)


def figure_bytes(fig) -> bytes:
    """A figure as PNG bytes (100 dpi), the figure closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def png_img(png: bytes, alt: str) -> str:
    """A PNG image (drawn once, also logged as a file) embedded in a page."""
    encoded = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def html_table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for c in frame.columns:
            v = r[c]
            if c in formats and pd.notna(v):
                cells.append(f'<td class="n">{formats[c].format(v)}</td>')
            else:
                cells.append(f"<td>{html.escape('' if pd.isna(v) else str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
