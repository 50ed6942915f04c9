"""Pictures drawn on the server as SVG (no script, no library): a flow as a graph of its
steps, and bar charts for the dashboard. Text is escaped; sizes are in pixels."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from schemas.flow import Condition, FlowDefinition, StepDefinition

BOX_W, BOX_H, GAP, LEFT, TOP = 420, 92, 46, 40, 20
OPS = {"eq": "=", "ne": "≠", "in": "∈", "contains": "∋"}  # the others are words (t)


def _seconds(value: float) -> str:
    for size, unit in ((86400, "j"), (3600, "h"), (60, "min")):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value:g} s"


def _condition(cond: Condition, t: Callable[..., str]) -> str:
    shown = "" if cond.value is None else f" {cond.value}"
    return f"{cond.field} {OPS.get(cond.op) or t(f'graph.op_{cond.op}', cond.op)}{shown}"


def _lines(step: StepDefinition, t: Callable[..., str]) -> list[str]:
    """What a step's box says under its name: kind and connector, condition, retries and
    waits."""
    lines = [f"{step.kind}" + (f" · {step.connector}" if step.connector else "")]
    if step.when:
        conditions = t("graph.and").join(_condition(c, t) for c in step.when)
        lines.append(t("graph.when", conditions=conditions))
    retry = step.retry
    lines.append(t("graph.retry", attempts=retry.max_attempts,
                   backoff=_seconds(retry.backoff_seconds),
                   timeout=_seconds(retry.timeout_seconds)))
    if "wait" in step.model_fields_set:
        lines.append(t("graph.wait", poll=_seconds(step.wait.poll_seconds),
                       deadline=_seconds(step.wait.deadline_seconds)))
    return lines


def flow_graph(flow: FlowDefinition, t: Callable[..., str]) -> str:
    """The steps of ``flow`` top to bottom, each linked to the step it hands over to;
    an optional step is dashed and its skip drawn beside it."""
    order = {s.name: i for i, s in enumerate(flow.steps)}
    height = TOP * 2 + (len(flow.steps) + 1) * (BOX_H + GAP)
    width = LEFT * 2 + BOX_W + 120
    title = escape(t("graph.title", flow=flow.name))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-labelledby="graph-title" '
             f'class="flow-graph"><title id="graph-title">{title}'
             '</title><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
             'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
             '<path d="M0,0 L10,5 L0,10 z" fill="#1e1e1e"/></marker></defs>']
    for i, step in enumerate(flow.steps):
        y = TOP + i * (BOX_H + GAP)
        dash = ' stroke-dasharray="6 4"' if step.optional else ""
        parts.append(f'<g class="step" data-step="{escape(step.name)}"><rect x="{LEFT}" y="{y}" '
                     f'width="{BOX_W}" height="{BOX_H}" rx="8" fill="#f5f5fe" stroke="#000091" '
                     f'stroke-width="2"{dash}/><text x="{LEFT + 12}" y="{y + 22}" '
                     f'font-weight="bold" font-size="16">{i + 1}. {escape(step.name)}</text>')
        for j, line in enumerate(_lines(step, t)):
            parts.append(f'<text x="{LEFT + 12}" y="{y + 42 + j * 16}" font-size="13">'
                         f'{escape(line)}</text>')
        parts.append("</g>")
        target = flow.successor(step.name)
        end = order.get(target, len(flow.steps)) if target else len(flow.steps)
        parts.append(_arrow(LEFT + BOX_W // 2, y + BOX_H, TOP + end * (BOX_H + GAP)))
        if step.optional:
            parts.append(_skip(y, t))
    y_end = TOP + len(flow.steps) * (BOX_H + GAP)
    parts.append(f'<rect x="{LEFT + BOX_W // 2 - 70}" y="{y_end}" width="140" height="40" '
                 f'rx="20" fill="#1e1e1e"/><text x="{LEFT + BOX_W // 2}" y="{y_end + 26}" '
                 f'fill="#ffffff" text-anchor="middle" font-size="15">'
                 f'{escape(t("graph.end"))}</text></svg>')
    return "".join(parts)


def _arrow(x: int, y_from: int, y_to: int) -> str:
    return (f'<line x1="{x}" y1="{y_from}" x2="{x}" y2="{y_to - 2}" stroke="#1e1e1e" '
            'stroke-width="2" marker-end="url(#arrow)"/>')


def _skip(y: int, t: Callable[..., str]) -> str:
    """A dashed bypass on the right of an optional step's box: taken when it does not
    apply."""
    x = LEFT + BOX_W
    return (f'<path d="M{x - 100},{y - GAP // 2} H{x + 40} V{y + BOX_H + GAP // 2} H{x - 100}" '
            'fill="none" stroke="#6a6a6a" stroke-width="1.5" stroke-dasharray="4 3" '
            f'marker-end="url(#arrow)"/><text x="{x + 46}" y="{y + BOX_H // 2 + 4}" '
            f'font-size="12" fill="#3a3a3a">{escape(t("graph.skip"))}</text>')


def bar_chart(title: str, bars: list[tuple[str, int]], *, width: int = 640,
              height: int = 220, color: str = "#000091") -> str:
    """Vertical bars with their labels under them and values above them."""
    top = max((v for _, v in bars), default=0) or 1
    room = height - 60
    step = (width - 40) / max(len(bars), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" class="chart">'
             f'<title>{escape(title)}</title>'
             f'<line x1="20" y1="{height - 40}" x2="{width - 20}" y2="{height - 40}" '
             'stroke="#3a3a3a"/>']
    for i, (label, value) in enumerate(bars):
        h = round(room * value / top)
        x = 20 + i * step + step * 0.15
        w = step * 0.7
        parts.append(f'<rect x="{x:.1f}" y="{height - 40 - h}" width="{w:.1f}" height="{h}" '
                     f'fill="{color}"><title>{escape(label)} : {value}</title></rect>')
        if value:
            parts.append(f'<text x="{x + w / 2:.1f}" y="{height - 44 - h}" font-size="11" '
                         f'text-anchor="middle">{value}</text>')
        if len(bars) <= 12 or i % max(1, len(bars) // 12) == 0:
            parts.append(f'<text x="{x + w / 2:.1f}" y="{height - 24}" font-size="11" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
