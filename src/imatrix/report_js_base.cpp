// The report script, part 1: helpers shared by every section (DOM building, number formats,
// colour maps, the tooltip, axes and the per-layer line chart).
#include "imatrix/report_assets.h"

namespace imq::imatrix::report_assets {

const char kJsBase[] = R"JS(
'use strict';
const D = JSON.parse(document.getElementById('imq-data').textContent);
const SVGNS = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

function build(e, attrs, parent, text) {
  for (const k in (attrs || {})) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
  if (text !== undefined && text !== null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
const html = (tag, attrs, parent, text) => build(document.createElement(tag), attrs, parent, text);
const svg = (tag, attrs, parent, text) => build(document.createElementNS(SVGNS, tag), attrs, parent, text);
const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
const isNum = (v) => typeof v === 'number' && isFinite(v);

// Numbers: 4 significant digits, exponent form outside [1e-3, 1e5); null (NaN/Inf) -> "NaN".
function fmt(v, p) {
  if (v === null || v === undefined) return 'NaN';
  if (typeof v !== 'number') return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential((p || 4) - 2).replace('e+', 'e');
  return String(Number(v.toPrecision(p || 4)));
}
const fmtInt = (v) => (isNum(v) ? Math.round(v).toLocaleString('en-US') : 'NaN');
function fmtPow(e) {  // an axis tick at log10 value e: 0.01, 0.5, 20, 5k, 1M, 1e-5
  const v = Math.pow(10, e), r = (x) => String(Number(x.toPrecision(2)));
  if (v >= 1e9) return r(v / 1e9) + 'G';
  if (v >= 1e6) return r(v / 1e6) + 'M';
  if (v >= 1e4) return r(v / 1e3) + 'k';
  if (v >= 1e-3) return r(v);
  return v.toExponential(0).replace('e+', 'e');
}

// Sequential colour map (viridis stops) and a blue ramp for token counts.
const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779',
                 '#6ece58', '#b5de2b', '#fde725'];
const BLUES = ['#eef4fb', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'];
function hexrgb(h) { return [1, 3, 5].map((i) => parseInt(h.substr(i, 2), 16)); }
function ramp(stops, t) {
  t = clamp(isNum(t) ? t : 0, 0, 1) * (stops.length - 1);
  const i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
  const a = hexrgb(stops[i]), b = hexrgb(stops[i + 1]);
  const c = a.map((x, k) => Math.round(x + (b[k] - x) * f));
  return { css: 'rgb(' + c.join(',') + ')', dark: (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) < 140 };
}
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
                 '#17becf', '#7f7f7f', '#bcbd22', '#393b79', '#ad494a', '#637939', '#7b4173',
                 '#3182bd', '#e6550d'];
const kindColor = {};
D.kinds.forEach((k, i) => { kindColor[k] = PALETTE[i % PALETTE.length]; });
const layerName = (l) => (l < 0 ? 'other' : String(l));

// Tooltip: any element with data-tip shows it; charts update their overlay's data-tip on move.
const tip = $('tooltip');
document.addEventListener('mousemove', (ev) => {
  const t = ev.target && ev.target.closest ? ev.target.closest('[data-tip]') : null;
  const text = t ? t.getAttribute('data-tip') : '';
  if (!text) { tip.hidden = true; return; }
  tip.textContent = text;
  tip.hidden = false;
  const w = tip.offsetWidth, h = tip.offsetHeight;
  let x = ev.clientX + 14, y = ev.clientY + 14;
  if (x + w > window.innerWidth - 4) x = ev.clientX - w - 14;
  if (y + h > window.innerHeight - 4) y = ev.clientY - h - 14;
  tip.style.left = Math.max(4, x) + 'px';
  tip.style.top = Math.max(4, y) + 'px';
});
document.addEventListener('mouseleave', () => { tip.hidden = true; });

// Tick values: powers of ten on log axes (plus 2 and 5 when the range is short), "nice" steps
// on linear ones.
function linTicks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / (n || 5), mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}
function logTicks(lo, hi) {  // lo, hi are log10 values; returns log10 tick positions
  const out = [];
  for (let k = Math.ceil(lo - 1e-9); k <= Math.floor(hi + 1e-9); k++) out.push(k);
  if (out.length < 3)
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k++)
      for (const m of [2, 5]) {
        const e = k + Math.log10(m);
        if (e >= lo - 1e-9 && e <= hi + 1e-9) out.push(e);
      }
  out.sort((a, b) => a - b);
  if (out.length > 8) return out.filter((e) => Math.abs(e - Math.round(e)) < 1e-9 &&
                                              Math.round(e) % Math.ceil(out.length / 7) === 0);
  if (out.length) return out;
  // Less than one 2-5-10 step in range: nice linear steps of the value itself.
  return linTicks(Math.pow(10, lo), Math.pow(10, hi), 3).filter((v) => v > 0).map(Math.log10);
}
function extent(vals, pad) {
  let lo = Infinity, hi = -Infinity;
  for (const v of vals) if (isNum(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (lo === Infinity) return [0, 1];
  if (hi - lo < 1e-12) { const d = Math.abs(lo) * 0.1 || 0.5; return [lo - d, hi + d]; }
  const p = (hi - lo) * (pad || 0);
  return [lo - p, hi + p];
}

// A chart frame: title, y grid with ticks (log10 or linear), x ticks. Returns helpers.
function frame(parent, o) {
  const W = o.width || 330, H = o.height || 210, m = { l: 50, r: 12, t: o.title ? 24 : 8, b: 30 };
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, id: o.id || null,
                            class: 'chart-svg' }, parent);
  if (o.title) svg('text', { x: 4, y: 14, class: 'title' }, root, o.title);
  const X = (v) => m.l + (v - o.x[0]) / ((o.x[1] - o.x[0]) || 1) * (W - m.l - m.r);
  const Y = (v) => H - m.b - (v - o.y[0]) / ((o.y[1] - o.y[0]) || 1) * (H - m.t - m.b);
  const grid = svg('g', { class: 'grid' }, root), axis = svg('g', { class: 'axis' }, root);
  const yt = o.ylog ? logTicks(o.y[0], o.y[1]) : linTicks(o.y[0], o.y[1], 4);
  for (const v of yt) {
    svg('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }, grid);
    svg('text', { x: m.l - 5, y: Y(v) + 3.5, 'text-anchor': 'end' }, axis,
        o.ylog ? fmtPow(v) : (o.yfmt || fmt)(v));
  }
  const xt = o.xticks || linTicks(o.x[0], o.x[1], 6).filter((v) => !o.xint || Number.isInteger(v));
  for (const v of xt) {
    svg('line', { x1: X(v), x2: X(v), y1: H - m.b, y2: H - m.b + 4 }, axis);
    svg('text', { x: X(v), y: H - m.b + 15, 'text-anchor': 'middle' }, axis,
        o.xlog ? fmtPow(v) : (o.xfmt || fmt)(v));
  }
  svg('line', { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }, axis);
  if (o.xlabel) svg('text', { x: W - m.r, y: H - 2, 'text-anchor': 'end', class: 'muted' }, root, o.xlabel);
  return { root, X, Y, W, H, m };
}

// Per-layer line chart: series = [{kind, points: [[layer, value]]}]; log draws log10(value).
// Hovering shows every visible series' value at the nearest layer.
function layerChart(parent, o) {
  const tr = (v) => (o.log ? (v > 0 ? Math.log10(v) : null) : (isNum(v) ? v : null));
  const all = [];
  let xs = [];
  for (const s of o.series) for (const p of s.points) { all.push(tr(p[1])); xs.push(p[0]); }
  xs = [...new Set(xs)].sort((a, b) => a - b);
  const x = xs.length > 1 ? [xs[0], xs[xs.length - 1]] : [(xs[0] || 0) - 1, (xs[0] || 0) + 1];
  let y = o.fixed || extent(all, 0.06);
  if (o.percent) y = [Math.max(0, y[0]), Math.min(100, y[1])];
  const f = frame(parent, { id: o.id, title: o.title, x, y, ylog: o.log, xint: true,
                            xlabel: o.xlabel || 'layer', width: o.width, height: o.height,
                            yfmt: o.yfmt });
  const dots = xs.length <= 40;
  for (const s of o.series) {
    const g = svg('g', { class: 'series', 'data-kind': s.kind }, f.root);
    let d = '', pen = false;
    for (const p of s.points) {
      const v = tr(p[1]);
      if (v === null) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + f.X(p[0]).toFixed(1) + ',' + f.Y(v).toFixed(1);
      pen = true;
      if (dots) svg('circle', { cx: f.X(p[0]), cy: f.Y(v), r: 2.4, fill: kindColor[s.kind] || '#333' }, g);
    }
    g.prepend(svg('path', { d, stroke: kindColor[s.kind] || '#333' }, g));  // under the dots
  }
  const guide = svg('line', { class: 'guide', y1: f.m.t, y2: f.H - f.m.b, visibility: 'hidden' }, f.root);
  const over = svg('rect', { x: f.m.l, y: f.m.t, width: f.W - f.m.l - f.m.r, height: f.H - f.m.t - f.m.b,
                             fill: 'transparent', 'data-tip': '' }, f.root);
  over.addEventListener('mousemove', (ev) => {
    const r = f.root.getBoundingClientRect(), px = (ev.clientX - r.left) * f.W / r.width;
    let best = xs[0];
    for (const v of xs) if (Math.abs(f.X(v) - px) < Math.abs(f.X(best) - px)) best = v;
    guide.setAttribute('x1', f.X(best)); guide.setAttribute('x2', f.X(best));
    guide.setAttribute('visibility', 'visible');
    const rows = [];
    for (const s of o.series) {
      if (hiddenKinds.has(s.kind)) continue;
      const p = s.points.find((q) => q[0] === best);
      if (p) rows.push([s.kind, p[1]]);
    }
    rows.sort((a, b) => (isNum(b[1]) ? b[1] : -Infinity) - (isNum(a[1]) ? a[1] : -Infinity));
    const w = Math.max(...rows.map((r) => r[0].length), 4);
    over.setAttribute('data-tip', `${o.title} — layer ${best}\n` +
        rows.map((r) => r[0].padEnd(w) + '  ' + (o.vfmt || fmt)(r[1])).join('\n'));
  });
  over.addEventListener('mouseleave', () => guide.setAttribute('visibility', 'hidden'));
  return f;
}

// Kinds switched off in the legend (hidden in every per-layer chart).
const hiddenKinds = new Set();
function kindLegend(parent, kinds) {
  const box = html('div', { class: 'legend' }, parent);
  for (const k of kinds) {
    const chip = html('span', { class: 'chip', 'data-chip': k, title: 'show / hide ' + k }, box);
    html('i', { style: 'background:' + kindColor[k] }, chip);
    html('span', {}, chip, k);
    chip.addEventListener('click', () => {
      const off = !hiddenKinds.has(k);
      if (off) hiddenKinds.add(k); else hiddenKinds.delete(k);
      document.querySelectorAll(`[data-chip="${k}"]`).forEach((e) => e.classList.toggle('off', off));
      document.querySelectorAll(`.series[data-kind="${k}"]`).forEach((e) => e.classList.toggle('off', off));
    });
  }
  return box;
}
)JS";

}  // namespace imq::imatrix::report_assets
