#!/usr/bin/python3
"""demo/report.py: turns the demo's JSON summary into one self-contained HTML
report (inline SVG charts, no external assets).

    /usr/bin/python3 demo/report.py summary.json report.html

The JSON has: title, params {..}, phases [{name, seconds, counts {..}}],
series {name: [[t_seconds, value], ...]}, tables {title: {columns: [..], rows: [[..], ..]}}.
Standard library only.
"""
import html
import json
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def esc(v):
    """HTML-escapes any value."""
    return html.escape(str(v), quote=True)


def line_chart(title, series, width=760, height=240):
    """One SVG line chart; series is {label: [[x, y], ...]}."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return '<p class="empty">%s: no data</p>' % esc(title)
    xmin, xmax = min(p[0] for p in pts), max(p[0] for p in pts)
    ymax = max(max(p[1] for p in pts), 1e-9)
    xmax = xmax if xmax > xmin else xmin + 1
    left, right, top, bottom = 60, 20, 30, 40
    w, h = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - xmin) / (xmax - xmin) * w

    def sy(y):
        return top + h - (y / ymax) * h

    out = ['<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" role="img" aria-label="%s">' % (width, height, width, height, esc(title)),
           '<text x="%d" y="18" class="title">%s</text>' % (left, esc(title)),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>' % (left, top + h, left + w, top + h),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>' % (left, top, left, top + h)]
    for i in range(5):
        y = ymax * i / 4
        out.append('<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>'
                   % (left - 6, sy(y) + 4, esc(fmt(y))))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>' % (left, sy(y), left + w, sy(y)))
    for i in range(5):
        x = xmin + (xmax - xmin) * i / 4
        out.append('<text x="%.1f" y="%d" class="tick" text-anchor="middle">%ss</text>'
                   % (sx(x), top + h + 16, esc(fmt(x))))
    for n, (label, s) in enumerate(series.items()):
        if not s:
            continue
        color = COLORS[n % len(COLORS)]
        path = " ".join("%.1f,%.1f" % (sx(x), sy(y)) for x, y in s)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (color, path))
        out.append('<text x="%d" y="%d" fill="%s" class="legend">%s</text>'
                   % (left + 10 + 170 * n, height - 6, color, esc(label)))
    out.append('</svg>')
    return "\n".join(out)


def fmt(v):
    """Short number format for ticks and tables."""
    if isinstance(v, float):
        if abs(v) >= 100 or v == int(v):
            return "%d" % round(v)
        return "%.2f" % v
    return str(v)


def table(title, t):
    """An HTML table from {columns, rows}."""
    head = "".join("<th>%s</th>" % esc(c) for c in t.get("columns", []))
    body = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % esc(fmt(c) if c is not None else "")
                                             for c in row) for row in t.get("rows", []))
    return "<h3>%s</h3><table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>" % (esc(title), head, body)


def render(data):
    """The whole HTML document."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"/>',
             "<title>%s</title>" % esc(data.get("title", "retailflow demo")),
             "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
             ".chart{display:block;margin:1em 0}.title{font-size:14px;font-weight:bold}.tick{font-size:10px;fill:#555}"
             ".legend{font-size:12px}.axis{stroke:#333}.grid{stroke:#eee}.empty{color:#999}</style>",
             "</head><body>",
             "<h1>%s</h1>" % esc(data.get("title", "retailflow demo"))]
    params = data.get("params", {})
    if params:
        parts.append("<p>%s</p>" % esc(", ".join("%s = %s" % kv for kv in params.items())))
    phases = data.get("phases", [])
    if phases:
        keys = sorted({k for p in phases for k in p.get("counts", {})})
        parts.append(table("Phases", {"columns": ["phase", "seconds"] + keys,
                                      "rows": [[p["name"], p.get("seconds")] + [p.get("counts", {}).get(k) for k in keys]
                                               for p in phases]}))
    groups = data.get("charts", [])
    series = data.get("series", {})
    for g in groups:
        parts.append(line_chart(g["title"], {name: series.get(name, []) for name in g["series"]}))
    for title, t in data.get("tables", {}).items():
        parts.append(table(title, t))
    parts.append("</body></html>")
    return "\n".join(parts)


def main():
    """Reads the JSON summary and writes the report."""
    if len(sys.argv) != 3:
        sys.exit("usage: report.py summary.json report.html")
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(render(data))


if __name__ == "__main__":
    main()
