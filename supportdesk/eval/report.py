"""Rendering an :class:`~supportdesk.eval.runner.EvalReport`: a plain-text table, JSON, and one
self-contained HTML file (inline CSS, HTML-table heatmaps, an SVG latency histogram; no assets)."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from supportdesk.eval.metrics import CaseResult, ConfusionMatrix, MetricValue, RiskCoverage

if TYPE_CHECKING:
    from supportdesk.eval.runner import EvalReport

__all__ = ["format_table", "format_value", "heatmap_html", "latency_histogram_svg", "render_html",
           "risk_coverage_svg", "write_html", "write_json"]

logger = logging.getLogger(__name__)

MAX_HTML_CASES = 300
_CORNER = "expected \\ predicted"


def format_value(metric: MetricValue) -> str:
    """A metric's value for a table: 3 decimals for ratios and seconds, 2 for means; ``-`` if none."""
    if metric.value is None:
        return "-"
    if metric.unit == "seconds":
        return f"{metric.value:.3f} s"
    if metric.unit == "ratio":
        return f"{metric.value:.3f}"
    return f"{metric.value:,.2f}"


def _text_matrix(matrix: ConfusionMatrix) -> list[str]:
    width = max(len(label) for label in [*matrix.rows, *matrix.columns, _CORNER])
    cell = max(6, *(len(c) for c in matrix.columns), *(len(str(v)) for row in matrix.counts for v in row))
    lines = [f"{_CORNER:<{width}}  " + "  ".join(f"{c:>{cell}}" for c in matrix.columns)]
    for label, row in zip(matrix.rows, matrix.counts, strict=True):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{v:>{cell}}" for v in row))
    return lines


def format_table(report: EvalReport) -> str:
    """All metrics with their n as an aligned plain-text table, then the confusion matrices and the
    failures by reason. The CLI prints it; nothing here prints."""
    metrics = report.metrics
    header = f"{report.name}: {metrics.n_cases:,} cases in {report.duration_s:.1f}s"
    if report.settings.get("limit") is not None:
        header += f" (stratified sample, limit {report.settings['limit']}, seed {report.settings.get('seed')})"
    if report.settings.get("encoder"):
        header += f", encoder {report.settings['encoder']}"
    if report.settings.get("prefilter"):
        header += f" behind the {report.settings['prefilter']['encoder']} prefilter"
    rows = [(m.name, format_value(m), f"{m.n:,}", m.description) for m in metrics.values]
    widths = [max(len(row[i]) for row in [("metric", "value", "n", ""), *rows]) for i in range(3)]
    lines = [header, "", f"{'metric':<{widths[0]}}  {'value':>{widths[1]}}  {'n':>{widths[2]}}  description"]
    lines.append("-" * (sum(widths) + 4 + 2 + len("description")))
    for name, value, n, description in rows:
        lines.append(f"{name:<{widths[0]}}  {value:>{widths[1]}}  {n:>{widths[2]}}  {description}".rstrip())
    for matrix in metrics.confusion.values():
        lines += ["", f"confusion: {matrix.name} (n={matrix.n:,})", *_text_matrix(matrix)]
    if metrics.failures:
        lines += ["", "failures by reason:"]
        lines += [f"  {reason:<30} {count:>7,}" for reason, count in metrics.failures.items()]
    return "\n".join(lines)


def write_json(report: EvalReport, path: Path | str) -> Path:
    """Write the whole report (settings, metrics, matrices, every per-case result) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = report.model_dump(mode="json")
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    logger.info("wrote JSON report to %s", path)
    return path


# ------------------------------------------------------------------------------------------------ HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2937;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}
.meta{color:#6b7280}table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .6rem;border:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#f9fafb}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.heat td{text-align:center;min-width:3.2rem;font-variant-numeric:tabular-nums}
table.heat td.diag{outline:2px solid #059669;outline-offset:-2px}
.wrap{display:flex;flex-wrap:wrap;gap:2rem}.bad{color:#b91c1c}.small{font-size:12px;color:#6b7280}
td.q{max-width:420px;word-wrap:break-word}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _metrics_table(values: Sequence[MetricValue]) -> str:
    rows = "".join(
        f"<tr><td>{_e(m.name)}</td><td class=num>{_e(format_value(m))}</td><td class=num>{m.n:,}</td>"
        f"<td>{_e(m.description)}</td></tr>"
        for m in values
    )
    return f"<table><tr><th>metric</th><th>value</th><th>n</th><th>description</th></tr>{rows}</table>"


def heatmap_html(matrix: ConfusionMatrix) -> str:
    """A confusion matrix as an HTML table, each cell shaded by its share of the row."""
    head = "".join(f"<th>{_e(c)}</th>" for c in matrix.columns)
    body = []
    for label, row in zip(matrix.rows, matrix.counts, strict=True):
        total = sum(row)
        cells = []
        for column, count in zip(matrix.columns, row, strict=True):
            share = count / total if total else 0.0
            color = "#fff" if share > 0.55 else "#111827"
            cls = ' class="diag"' if column == label else ""
            cells.append(
                f'<td{cls} style="background:rgba(37,99,235,{share:.3f});color:{color}" '
                f'title="{_e(label)} -> {_e(column)}: {count} ({share:.1%} of row)">{count}</td>'
            )
        body.append(f"<tr><th>{_e(label)}</th>{''.join(cells)}<td class=num>{total:,}</td></tr>")
    return (
        f'<table class="heat" data-matrix="{_e(matrix.name)}"><caption>{_e(matrix.name)}: rows expected, '
        f"columns predicted (n={matrix.n:,})</caption><tr><th>expected \\ predicted</th>{head}<th>n</th></tr>"
        f"{''.join(body)}</table>"
    )


def latency_histogram_svg(latencies: Sequence[float], *, bins: int = 20, width: int = 640, height: int = 220) -> str:
    """An inline SVG histogram of per-case latencies (seconds)."""
    if not latencies:
        return "<p class=small>no latencies</p>"
    low, high = min(latencies), max(latencies)
    bins = max(1, min(bins, len(latencies)))
    span = (high - low) or 1.0
    counts = [0] * bins
    for value in latencies:
        counts[min(int((value - low) / span * bins), bins - 1)] += 1
    left, bottom, top = 48, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(counts)
    bar_w = plot_w / bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="latency histogram" font-size="11" font-family="sans-serif">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#9ca3af"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#9ca3af"/>',
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, count in enumerate(counts):
        bar_h = plot_h * count / peak if peak else 0
        start, end = low + span * i / bins, low + span * (i + 1) / bins
        parts.append(
            f'<rect x="{left + i * bar_w + 1:.1f}" y="{top + plot_h - bar_h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
            f'height="{bar_h:.1f}" fill="#2563eb"><title>{start:.3f}-{end:.3f} s: {count}</title></rect>'
        )
    for fraction in (0.0, 0.5, 1.0):
        x = left + plot_w * fraction
        anchor = {0.0: "start", 0.5: "middle", 1.0: "end"}[fraction]
        parts.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="{anchor}">{low + span * fraction:.3f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _is_miss(result: CaseResult) -> bool:
    case = result.case
    return bool(
        result.error
        or (case.expected_route is not None and result.predicted_route != case.expected_route)
        or (case.expected_faq_id is not None and result.predicted_faq_id != case.expected_faq_id)
        or (case.expected_category is not None and result.predicted_category != case.expected_category)
        or (case.expected_priority is not None and result.predicted_priority != case.expected_priority)
    )


def _expected(result: CaseResult) -> str:
    case = result.case
    pairs = [("route", case.expected_route), ("faq", case.expected_faq_id),
             ("category", case.expected_category), ("priority", case.expected_priority)]
    return ", ".join(f"{k}={v}" for k, v in pairs if v is not None)


def _predicted(result: CaseResult) -> str:
    pairs = [("route", result.predicted_route), ("faq", result.predicted_faq_id),
             ("category", result.predicted_category), ("priority", result.predicted_priority)]
    text = ", ".join(f"{k}={v}" for k, v in pairs if v is not None)
    if result.error:
        text += f" error={result.error}: {result.error_message or ''}"
    return text


def _misses_table(results: Sequence[CaseResult]) -> str:
    misses = [r for r in results if _is_miss(r)]
    if not misses:
        return "<p>Every case matched its labels.</p>"
    rows = "".join(
        f"<tr><td>{_e(r.case.id or '')}</td><td class=q>{_e(r.case.query[:300])}</td><td>{_e(_expected(r))}</td>"
        f"<td class=bad>{_e(_predicted(r))}</td><td class=num>{r.latency_s:.3f}</td></tr>"
        for r in misses[:MAX_HTML_CASES]
    )
    note = f"<p class=small>first {MAX_HTML_CASES} of {len(misses):,}; all are in the JSON output</p>" if len(
        misses) > MAX_HTML_CASES else f"<p class=small>{len(misses):,} cases</p>"
    return (f"{note}<table><tr><th>id</th><th>query</th><th>expected</th><th>predicted</th><th>s</th></tr>"
            f"{rows}</table>")


def risk_coverage_svg(curve: RiskCoverage, *, width: int = 480, height: int = 300) -> str:
    """An SVG plot of the risk-coverage curve (coverage on x, wrong-answer risk on y) with the
    operating point marked."""
    left, bottom, top, right = 48, 36, 12, 12
    pw, ph = width - left - right, height - top - bottom
    ymax = max(0.05, min(1.0, max(curve.risk or [0.0]) * 1.1))

    def xy(c: float, r: float) -> tuple[float, float]:
        return left + c * pw, top + ph - min(r, ymax) / ymax * ph

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(c, r) for c, r in zip(curve.coverage, curve.risk)))
    ticks = "".join(
        f'<text x="{left - 6}" y="{xy(0, v)[1] + 4:.1f}" text-anchor="end" font-size="11">{v:.2f}</text>'
        f'<line x1="{left}" x2="{left + pw}" y1="{xy(0, v)[1]:.1f}" y2="{xy(0, v)[1]:.1f}" stroke="#eee"/>'
        for v in (ymax * k / 4 for k in range(5)))
    xticks = "".join(f'<text x="{xy(v, 0)[0]:.1f}" y="{top + ph + 16}" text-anchor="middle" font-size="11">{v:.1f}</text>'
                     for v in (0, 0.25, 0.5, 0.75, 1.0))
    mark = ""
    if curve.operating_point is not None:
        ox, oy = xy(*curve.operating_point)
        mark = (f'<circle cx="{ox:.1f}" cy="{oy:.1f}" r="5" fill="#d62728"><title>operating point: coverage '
                f'{curve.operating_point[0]:.3f}, wrong-answer rate {curve.operating_point[1]:.3f}</title></circle>'
                f'<text x="{ox + 8:.1f}" y="{oy - 6:.1f}" font-size="11" fill="#d62728">operating point</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="risk-coverage curve">{ticks}{xticks}'
            f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#333"/>'
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>'
            f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>{mark}'
            f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle" font-size="12">coverage (answered / all)</text>'
            f'<text x="12" y="{top + ph / 2:.0f}" font-size="12" transform="rotate(-90 12 {top + ph / 2:.0f})" '
            f'text-anchor="middle">risk (wrong / answered)</text></svg>')


def render_html(report: EvalReport) -> str:
    """The report as one self-contained HTML page."""
    metrics = report.metrics
    settings = ", ".join(f"{k}={v}" for k, v in report.settings.items())
    failures = "".join(f"<tr><td>{_e(k)}</td><td class=num>{v:,}</td></tr>" for k, v in metrics.failures.items())
    sections = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>{_e(report.name)} - supportdesk eval</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(report.name)}</h1><p class=meta>{metrics.n_cases:,} cases, started {_e(report.started_at)}, "
        f"{report.duration_s:.1f}s; {_e(settings)}</p>",
        "<h2>Metrics</h2>", _metrics_table(metrics.values),
    ]
    if metrics.confusion:
        sections += ["<h2>Confusion matrices</h2><div class=wrap>",
                     *(heatmap_html(m) for m in metrics.confusion.values()), "</div>"]
    if metrics.risk_coverage is not None:
        curve = metrics.risk_coverage
        sections += ["<h2>Risk-coverage</h2>",
                     f"<p class=meta>AURC {curve.aurc:.4f} over {curve.n:,} cases; the red point is what the stage "
                     "decided (its coverage and wrong-answer rate).</p>", risk_coverage_svg(curve)]
    sections += ["<h2>Latency</h2>", latency_histogram_svg([r.latency_s for r in report.results])]
    sections += ["<h2>Failures by reason</h2>",
                 f"<table><tr><th>reason</th><th>cases</th></tr>{failures}</table>" if failures else "<p>None.</p>"]
    sections += ["<h2>Cases not matching their labels</h2>", _misses_table(report.results), "</body></html>"]
    return "\n".join(sections)


def write_html(report: EvalReport, path: Path | str) -> Path:
    """Write :func:`render_html` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    logger.info("wrote HTML report to %s", path)
    return path
