// The report script, part 3: one tensor's column distribution, the comparison of two files,
// the full statistics table, and start-up (each section drawn in turn, then data-ready="1").
#include "imatrix/report_assets.h"

namespace imq::imatrix::report_assets {

const char kJsDetail[] = R"JS(
function orderKey(t) {
  const k = D.kinds.indexOf(t.kind);
  return [t.layer < 0 ? 1e9 : t.layer, k < 0 ? 1e6 : k];
}
function byLayerKind(a, b) {
  const x = orderKey(a), y = orderKey(b);
  return x[0] - y[0] || x[1] - y[1] || (a.name < b.name ? -1 : 1);
}

let selectTensor = () => {};

function drawDistribution() {
  const sel = $('tensor-select');
  const list = D.tensors.filter((t) => t.hist && t.hist.counts).sort(byLayerKind);
  if (!list.length) { html('p', { class: 'hint' }, $('dist-summary'), 'No tensor has data.'); return; }
  for (const t of list)
    html('option', { value: t.name }, sel, `${t.name}   (max/μ ${fmt(t.maxmean, 3)})`);
  let best = list[0];
  for (const t of list) if (isNum(t.maxmean) && !(t.maxmean <= best.maxmean)) best = t;
  html('span', { class: 'hint' }, $('dist-default'),
       `Default: the tensor with the highest max/μ ratio (${best.name}, ${fmt(best.maxmean, 3)}).`);
  const render = (t) => {
    for (const id of ['dist-hist', 'dist-curve', 'outliers', 'dist-summary']) $(id).replaceChildren();
    const s = t.stats || {};
    $('dist-summary').textContent = `${t.name}:  ${fmtInt(t.curve.n)} columns` +
        (t.slots > 1 ? ` (${t.ne0} × ${t.slots - t.zero_slots} experts with tokens)` : '') +
        `,  μ ${fmt(s.mean)},  max ${fmt(s.max)},  max/μ ${fmt(t.maxmean, 3)}` +
        (t.hist.nonpos ? `,  ${fmtInt(t.hist.nonpos)} columns ≤ 0 (not on the log axis)` : '') +
        (t.nonfinite ? `,  ${t.nonfinite} NaN/Inf values left out` : '');
    // Histogram over log10(importance).
    const h = t.hist, nb = h.counts.length, bw = (h.hi - h.lo) / nb;
    const f = frame($('dist-hist'), { title: 'Histogram of column importance', x: [h.lo, h.hi],
                                      y: [0, Math.max(...h.counts) * 1.08], xticks: logTicks(h.lo, h.hi),
                                      xlog: true, xlabel: 'importance (log scale)', width: 440, height: 250,
                                      yfmt: (v) => fmtInt(v) });
    h.counts.forEach((c, i) => {
      if (!c) return;
      const x0 = f.X(h.lo + i * bw), x1 = f.X(h.lo + (i + 1) * bw);
      const top = Math.min(f.Y(c), f.Y(0) - 2);  // a lone outlier column stays visible
      svg('rect', { x: x0 + 0.5, y: top, width: Math.max(1, x1 - x0 - 1), height: f.Y(0) - top,
                    fill: '#4c6ef5', class: 'bin', 'data-tip': `${fmt(Math.pow(10, h.lo + i * bw))} … ` +
                    `${fmt(Math.pow(10, h.lo + (i + 1) * bw))}\n${fmtInt(c)} columns` }, f.root);
    });
    if (s.mean > 0) {
      const x = f.X(Math.log10(s.mean));
      svg('line', { x1: x, x2: x, y1: f.m.t, y2: f.H - f.m.b, stroke: '#e8590c', 'stroke-dasharray': '4 3' }, f.root);
      svg('text', { x: x + 3, y: f.m.t + 10, style: 'fill:#e8590c;font-size:10px' }, f.root, 'μ');
    }
    // Sorted curve: value against rank, both on log axes; the exact top outliers in red.
    const pts = [];
    t.curve.rank.forEach((r, i) => { const v = t.curve.value[i]; if (v > 0) pts.push([Math.log10(r + 1), Math.log10(v)]); });
    const tops = t.top.filter((o) => o.value > 0).map((o, i) => [Math.log10(i + 1), Math.log10(o.value), o]);
    const g = frame($('dist-curve'), { title: 'Columns sorted by importance', x: [0, Math.log10(t.curve.n) || 1],
                                       y: extent(pts.concat(tops).map((p) => p[1]), 0.05), ylog: true, xlog: true,
                                       xticks: logTicks(0, Math.log10(t.curve.n) || 1),
                                       xlabel: 'rank (log scale)', width: 440, height: 250 });
    svg('path', { d: pts.map((p, i) => (i ? 'L' : 'M') + g.X(p[0]).toFixed(1) + ',' + g.Y(p[1]).toFixed(1)).join(''),
                  fill: 'none', stroke: '#3b5bdb', 'stroke-width': 1.8 }, g.root);
    if (s.mean > 0)
      svg('line', { x1: g.m.l, x2: g.W - g.m.r, y1: g.Y(Math.log10(s.mean)), y2: g.Y(Math.log10(s.mean)),
                    stroke: '#e8590c', 'stroke-dasharray': '4 3' }, g.root);
    tops.forEach((p, i) => {
      const o = p[2], where = t.slots > 1 ? `expert ${o.expert}, column ${o.col}` : `column ${o.col}`;
      svg('circle', { cx: g.X(p[0]), cy: g.Y(p[1]), r: 3.2, fill: '#e03131', class: 'outlier',
                      'data-tip': `#${i + 1}: ${where}\nimportance ${fmt(o.value)} (${fmt(o.value / s.mean, 3)} × μ)` }, g.root);
      if (i === 0)
        svg('text', { x: g.X(p[0]) + 7, y: g.Y(p[1]) - 5, style: 'font-size:10px;fill:#c92a2a' }, g.root,
            'max: ' + where);
    });
    // Outlier table.
    const tb = $('outliers');
    const hr = html('tr', {}, html('thead', {}, tb));
    ['#', t.slots > 1 ? 'expert' : null, 'column', 'importance', '× μ'].forEach((c) => { if (c) html('th', {}, hr, c); });
    const body = html('tbody', {}, tb);
    t.top.forEach((o, i) => {
      const tr = html('tr', {}, body);
      html('td', {}, tr, i + 1);
      if (t.slots > 1) html('td', {}, tr, o.expert);
      html('td', {}, tr, o.col);
      html('td', { class: 'mono' }, tr, fmt(o.value, 6));
      html('td', {}, tr, s.mean > 0 ? fmt(o.value / s.mean, 3) : '–');
    });
  };
  selectTensor = (name, scroll) => {
    const t = list.find((x) => x.name === name);
    if (!t) return;
    sel.value = name;
    sel.setAttribute('data-selected', name);
    render(t);
    if (scroll) $('sec-dist').scrollIntoView({ behavior: 'smooth' });
  };
  sel.addEventListener('change', () => selectTensor(sel.value, false));
  selectTensor(best.name, false);
}

function drawCompare() {
  const C = D.compare;
  if (!C) return;
  const rows = C.rows.slice().sort(byLayerKind);
  const cos = rows.map((r) => r.cos).filter(isNum).sort((a, b) => a - b);
  const ratios = rows.map((r) => r.ratio).filter((v) => v > 0);
  const gmean = ratios.length ? Math.exp(ratios.reduce((a, v) => a + Math.log(v), 0) / ratios.length) : null;
  const worst = rows.filter((r) => isNum(r.cos)).sort((a, b) => a.cos - b.cos)[0];
  let txt = `${rows.length} tensors compared. Cosine similarity of the importance vectors: ` +
            `median ${fmt(cos[Math.floor(cos.length / 2)], 4)}, lowest ${fmt(cos[0], 4)}` +
            (worst ? ` (${worst.name})` : '') + `. Geometric mean of μB/μA: ${fmt(gmean, 3)}.`;
  if (C.only_a.length) txt += ` Only in A: ${C.only_a.length} (${C.only_a.slice(0, 4).join(', ')}${C.only_a.length > 4 ? ', …' : ''}).`;
  if (C.only_b.length) txt += ` Only in B: ${C.only_b.length} (${C.only_b.slice(0, 4).join(', ')}${C.only_b.length > 4 ? ', …' : ''}).`;
  $('compare-summary').textContent = txt;
  const box = $('compare-charts');
  const layered = rows.filter((r) => r.layer >= 0);
  layerChart(html('div', { class: 'chart' }, box), { id: 'compare-cos', title: 'cos(A, B) per layer',
             series: seriesBy(layered, (r) => r.cos), width: 520, height: 230 });
  layerChart(html('div', { class: 'chart' }, box), { id: 'compare-ratio', title: 'μB / μA per layer', log: true,
             series: seriesBy(layered, (r) => r.ratio), width: 520, height: 230 });
  const tb = $('compare-table'), hr = html('tr', {}, html('thead', {}, tb));
  ['tensor', 'layer', 'kind', 'cos(A, B)', 'μ A', 'μ B', 'μB / μA'].forEach((c, i) => html('th', { class: i < 3 ? 'l' : '' }, hr, c));
  const body = html('tbody', {}, tb);
  const lo = Math.min(0.9, cos.length ? cos[0] : 0);
  rows.slice().sort((a, b) => (isNum(a.cos) ? a.cos : 2) - (isNum(b.cos) ? b.cos : 2)).forEach((r) => {
    const tr = html('tr', {}, body);
    html('td', { class: 'l mono' }, tr, r.name);
    html('td', { class: 'l' }, tr, layerName(r.layer));
    html('td', { class: 'l' }, tr, r.kind);
    const td = html('td', {}, tr);
    if (isNum(r.cos)) html('span', { class: 'bar', style: `width:${(4 + 60 * (r.cos - lo) / ((1 - lo) || 1)).toFixed(0)}px;` +
                                      `background:${ramp(VIRIDIS, (r.cos - lo) / ((1 - lo) || 1)).css}` }, td);
    html('span', { class: isNum(r.cos) ? '' : 'nanval' }, td, isNum(r.cos) ? r.cos.toFixed(4) : 'n/a');
    html('td', {}, tr, fmt(r.mean_a));
    html('td', {}, tr, fmt(r.mean_b));
    html('td', {}, tr, fmt(r.ratio, 3));
  });
}

function drawTable() {
  const cols = [
    ['layer', 'Layer', (t) => t.layer, (t) => layerName(t.layer)], ['kind', 'Tensor', (t) => t.kind],
    ['sum', 'Σ(Act²)'], ['min', 'Min'], ['max', 'Max'], ['mean', 'μ'], ['std', 'σ'], ['active', '% Active'],
    ['n', 'N', null, (t) => (t.stats ? fmtInt(t.stats.n) : '–')], ['entropy', 'Entropy'], ['enorm', 'E (norm)'],
    ['zd', 'ZD %'], ['cos', 'CosSim'], ['maxmean', 'max/μ', (t) => t.maxmean],
  ];
  const tb = $('stats-table'), hr = html('tr', {}, html('thead', {}, tb)), body = html('tbody', {}, tb);
  const val = (c, t) => (c[2] ? c[2](t) : t.stats ? t.stats[c[0]] : undefined);
  let order = { col: 0, dir: 1 };
  const fill = () => {
    body.replaceChildren();
    const list = D.tensors.slice().sort((a, b) => {
      if (order.col === 0) return order.dir * byLayerKind(a, b);
      const c = cols[order.col], x = val(c, a), y = val(c, b);
      if (typeof x === 'string') return order.dir * (x < y ? -1 : x > y ? 1 : byLayerKind(a, b));
      return order.dir * ((isNum(x) ? x : -Infinity) - (isNum(y) ? y : -Infinity)) || byLayerKind(a, b);
    });
    for (const t of list) {
      const tr = html('tr', { 'data-name': t.name, title: t.name }, body);
      cols.forEach((c, i) => {
        const v = val(c, t);
        let text = c[3] ? c[3](t) : i === 1 ? v : t.stats ? fmt(v, 6) : '–';
        const bad = (t.stats && v === null) || (i === 1 && t.nonfinite);
        html('td', { class: (i < 2 ? 'l' : '') + (bad ? ' nanval' : ''), title: i === 1 && t.nonfinite ?
                     `${t.nonfinite} NaN/Inf values, left out of the statistics` : null }, tr, text);
      });
    }
  };
  cols.forEach((c, i) => {
    const th = html('th', { class: i < 2 ? 'l' : '', title: 'sort' }, hr, c[1]);
    th.addEventListener('click', () => { order = { col: i, dir: order.col === i ? -order.dir : (i < 2 ? 1 : -1) }; fill(); });
  });
  fill();
}

// Start-up: every section on its own, so one failure is shown without hiding the others.
for (const [name, f] of [['header', drawHeader], ['heatmap', drawHeatmap], ['experts', drawExperts],
                         ['per-layer charts', drawLayerCharts], ['distribution', drawDistribution],
                         ['comparison', drawCompare], ['statistics table', drawTable]]) {
  try { f(); } catch (e) { window.imqError(`Error while drawing the ${name}: ${e && e.stack || e}`); }
}
document.body.setAttribute('data-ready', '1');
)JS";

}  // namespace imq::imatrix::report_assets
