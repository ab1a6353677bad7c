// The report script, part 2: header (files, coverage warnings), the layer x kind heatmap of mean
// importance, the expert coverage heatmap and the per-layer statistic charts.
#include "imatrix/report_assets.h"

namespace imq::imatrix::report_assets {

const char kJsViews[] = R"JS(
const byName = {};
D.tensors.forEach((t) => { byName[t.name] = t; });

function drawHeader() {
  const h = $('header');
  const title = html('h1', {}, h, 'imatrix report');
  html('span', { class: 'sub' }, title, D.files.map((f) => f.name).join('  vs  '));
  D.files.forEach((f, i) => {
    const facts = html('div', { class: 'facts', id: 'file-' + i }, h);
    const fact = (k, v, cls, wide) => {
      const d = html('div', { class: wide ? 'fact wide' : 'fact' }, facts);
      html('div', { class: 'k' }, d, k);
      return html('div', { class: 'v' + (cls ? ' ' + cls : '') }, d, v);
    };
    const name = fact('file', '', '', true);
    if (D.files.length > 1) html('span', { class: 'filetag ' + (i ? 'b' : 'a') }, name, i ? 'B' : 'A');
    name.appendChild(document.createTextNode(f.name));
    fact('datasets', f.datasets.length ? f.datasets.join(', ') : '(none recorded)', 'small', true);
    fact('chunks', f.chunk_count ? `${fmtInt(f.chunk_count)} × ${fmtInt(f.chunk_size)} tokens`
                                 : (f.chunk_size ? `? × ${fmtInt(f.chunk_size)}` : 'unknown'));
    fact('tokens seen (dense)', fmtInt(f.tokens));
    fact('entries', fmtInt(f.entries));
    if (i === 0) {
      const nl = D.layers.filter((l) => l >= 0).length;
      fact('model', `${nl} layers · ${D.kinds.length} kinds` + (D.experts ? ` · ${D.experts.n_expert} experts` : ''), '', true);
    }
  });
  const w = html('div', { id: 'warnings' }, h);
  if (!D.warnings.length) {
    html('div', { class: 'warnbox ok' }, w,
         '✓ Full coverage: every tensor and every expert saw tokens; no NaN or Inf values.');
    return;
  }
  const box = html('div', { class: 'warnbox has' }, w);
  const nb = D.warnings.filter((x) => x.level === 'bad').length;
  html('b', {}, box, `${D.warnings.length} coverage warning${D.warnings.length > 1 ? 's' : ''}` +
                     (nb ? ` (${nb} serious)` : ''));
  const item = (ul, x) => {
    const li = html('li', { class: x.level }, ul);
    if (D.files.length > 1) html('span', { class: 'filetag ' + (x.file ? 'b' : 'a') }, li, x.file ? 'B' : 'A');
    html('span', { class: 't' }, li, x.tensor);
    li.appendChild(document.createTextNode(': ' + x.text));
  };
  const sorted = D.warnings.slice().sort((a, b) => (a.level === 'bad' ? 0 : 1) - (b.level === 'bad' ? 0 : 1));
  const ul = html('ul', {}, box);
  sorted.slice(0, 6).forEach((x) => item(ul, x));
  if (sorted.length > 6) {
    const det = html('details', {}, box);
    html('summary', {}, det, `${sorted.length - 6} more`);
    const ul2 = html('ul', {}, det);
    sorted.slice(6).forEach((x) => item(ul2, x));
  }
}

function tensorTip(t) {
  const s = t.stats;
  let out = t.name;
  if (!s) return out + '\nno tokens (count 0): no statistics' +
                      (t.nonfinite ? `\n!! ${t.nonfinite} NaN/Inf values` : '');
  out += `\nμ (mean importance) ${fmt(s.mean)}\nΣ(Act²)  ${fmt(s.sum)}\nmax      ${fmt(s.max)}` +
         `   max/μ ${fmt(t.maxmean, 3)}\nN        ${fmtInt(s.n)}   active ${fmt(s.active)}%` +
         `\nCosSim (prev layer) ${fmt(s.cos, 3)}`;
  if (t.slots > 1) out += `\nexperts  ${t.slots - t.zero_slots} of ${t.slots} with tokens`;
  if (t.nonfinite) out += `\n!! ${t.nonfinite} NaN/Inf values (left out of these numbers)`;
  return out;
}

function drawHeatmap() {
  const box = $('heatmap-box');
  const rows = D.layers.slice().sort((a, b) => (a < 0) - (b < 0) || a - b), cols = D.kinds;
  const cell = {};
  D.tensors.forEach((t) => { cell[t.layer + '|' + t.kind] = t; });
  const logs = D.tensors.map((t) => (t.stats && t.stats.mean > 0 ? Math.log10(t.stats.mean) : null));
  const [lo, hi] = extent(logs, 0);
  // Leave room for the expert card beside it (1344 px of row, minus card padding and gap).
  const budget = D.experts ? 1344 - expertsWidth() - 46 - 12 - 44 - 38 : 820;
  const cw = clamp(Math.floor(Math.min(820, budget) / cols.length), 30, 92);
  const ch = clamp(Math.floor(560 / rows.length), 6, 26);
  const rotate = cols.some((k) => k.length * 6.6 > cw - 4);
  const ml = 44, mt = rotate ? 12 + Math.max(...cols.map((k) => k.length)) * 5.2 : 22;
  const W = ml + cols.length * cw + 4, H = mt + rows.length * ch + 2;
  const root = svg('svg', { id: 'heatmap', viewBox: `0 0 ${W} ${H}`, width: W, height: H }, box);
  box.parentNode.style.minWidth = Math.min(W + 34, 1340) + 'px';  // wrap the expert card instead
  const defs = svg('defs', {}, root);
  const pat = svg('pattern', { id: 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse',
                               patternTransform: 'rotate(45)' }, defs);
  svg('rect', { width: 6, height: 6, fill: '#f1f3f5' }, pat);
  svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#adb5bd', 'stroke-width': 2.5 }, pat);
  cols.forEach((k, j) => {
    const x = ml + j * cw + cw / 2;
    if (rotate) svg('text', { x, y: mt - 6, transform: `rotate(-40 ${x} ${mt - 6})`, class: 'muted' }, root, k);
    else svg('text', { x, y: mt - 7, 'text-anchor': 'middle', class: 'muted' }, root, k);
  });
  const every = Math.ceil(11 / ch);
  rows.forEach((l, i) => {
    if (i % every === 0 || l < 0)
      svg('text', { x: ml - 6, y: mt + i * ch + ch / 2 + 3.5, 'text-anchor': 'end', class: 'muted' },
          root, layerName(l));
    cols.forEach((k, j) => {
      const t = cell[l + '|' + k];
      if (!t) return;
      const s = t.stats, x = ml + j * cw, y = mt + i * ch;
      let fill = 'url(#hatch)', cls = 'cell nodata', dark = false;
      if (t.nonfinite) { fill = '#e03131'; cls = 'cell nan'; dark = true; }
      else if (s && s.mean > 0) {
        const c = ramp(VIRIDIS, (Math.log10(s.mean) - lo) / (hi - lo));
        fill = c.css; cls = 'cell'; dark = c.dark;
      } else if (s) { fill = '#dee2e6'; cls = 'cell'; }
      const r = svg('rect', { x, y, width: cw, height: ch, fill, class: cls, 'data-tip': tensorTip(t),
                              'data-name': t.name }, root);
      r.addEventListener('click', () => selectTensor(t.name, true));
      if (ch >= 15 && cw >= 40) {
        const label = t.nonfinite ? 'NaN/Inf' : !s ? 'no tok' : fmt(s.mean, 3);
        svg('text', { x: x + cw / 2, y: y + ch / 2 + 3.5, 'text-anchor': 'middle', 'pointer-events': 'none',
                      style: `fill:${dark ? '#fff' : '#1d2330'};font-size:10px` }, root, label);
      }
    });
  });
  // Colour legend: log10 scale, plus the two special cells.
  const lw = Math.min(360, Math.max(220, W - 160)), lg = svg('svg', { id: 'heatmap-legend',
      viewBox: `0 0 ${lw + 170} 44`, width: lw + 170, height: 44 }, box);
  const grad = svg('linearGradient', { id: 'vir', x1: 0, x2: 1, y1: 0, y2: 0 }, svg('defs', {}, lg));
  VIRIDIS.forEach((c, i) => svg('stop', { offset: i / (VIRIDIS.length - 1), 'stop-color': c }, grad));
  svg('text', { x: 0, y: 10, class: 'muted' }, lg, 'mean importance μ (log scale)');
  svg('rect', { x: 0, y: 15, width: lw, height: 11, fill: 'url(#vir)', rx: 2 }, lg);
  for (const v of logTicks(lo, hi)) {
    const x = (v - lo) / ((hi - lo) || 1) * lw;
    svg('line', { x1: x, x2: x, y1: 26, y2: 30, stroke: '#868e96' }, lg);
    svg('text', { x, y: 41, 'text-anchor': 'middle', class: 'muted' }, lg, fmtPow(v));
  }
  svg('rect', { x: lw + 18, y: 15, width: 14, height: 11, fill: 'url(#hatch)' }, lg);
  svg('text', { x: lw + 36, y: 24.5, class: 'muted' }, lg, 'no tokens');
  svg('rect', { x: lw + 100, y: 15, width: 14, height: 11, fill: '#e03131' }, lg);
  svg('text', { x: lw + 118, y: 24.5, class: 'muted' }, lg, 'NaN/Inf');
}

const expertCell = () => clamp(Math.floor(420 / D.experts.n_expert), 3, 40);
const expertsWidth = () => 44 + D.experts.n_expert * expertCell() + 96;

function drawExperts() {
  const E = D.experts, box = $('experts-box');
  if (!E || !box) return;
  const n = E.n_expert, rows = E.layers;
  const cw = expertCell(), ch = clamp(Math.floor(560 / rows.length), 6, 26);
  let max = 0;
  rows.forEach((r) => r.counts.forEach((c) => { if (isNum(c)) max = Math.max(max, c); }));
  const ml = 44, mt = 22, W = expertsWidth(), H = mt + rows.length * ch + 2;
  const root = svg('svg', { id: 'experts', viewBox: `0 0 ${W} ${H}`, width: W, height: H }, box);
  box.parentNode.style.width = Math.max(W + 34, 380) + 'px';
  const step = Math.ceil(24 / cw);
  for (let e = 0; e < n; e += step)
    svg('text', { x: ml + e * cw + cw / 2, y: mt - 7, 'text-anchor': 'middle', class: 'muted' }, root, e);
  svg('text', { x: ml + n * cw + 8, y: mt - 7, class: 'muted' }, root, 'min / max');
  const every = Math.ceil(11 / ch);
  rows.forEach((r, i) => {
    const y = mt + i * ch, total = r.counts.reduce((a, c) => a + (isNum(c) ? c : 0), 0);
    if (i % every === 0)
      svg('text', { x: ml - 6, y: y + ch / 2 + 3.5, 'text-anchor': 'end', class: 'muted' }, root, layerName(r.layer));
    r.counts.forEach((c, e) => {
      const zero = !(c > 0), col = zero ? { css: '#e03131', dark: true } : ramp(BLUES, 0.08 + 0.92 * c / max);
      svg('rect', { x: ml + e * cw, y, width: cw, height: ch, fill: col.css, class: 'ecell' + (zero ? ' zero' : ''),
                    'data-tip': `layer ${layerName(r.layer)}, expert ${e}\ntokens ${fmtInt(c)}` +
                                ` (${fmt(total ? 100 * c / total : 0, 3)}% of the layer's ${fmtInt(total)})` +
                                `${zero ? '\nNO TOKENS: this expert has no importance data' : ''}\nfrom ${r.tensor}` }, root);
      if (ch >= 14 && cw >= 30)
        svg('text', { x: ml + e * cw + cw / 2, y: y + ch / 2 + 3.5, 'text-anchor': 'middle', 'pointer-events': 'none',
                      style: `fill:${col.dark ? '#fff' : '#1d2330'};font-size:9.5px` }, root, fmtInt(c));
    });
    const pos = r.counts.filter((c) => c > 0), zeros = r.counts.length - pos.length;
    const txt = zeros ? `${zeros} empty` : `${fmtInt(Math.min(...pos))} / ${fmtInt(Math.max(...pos))}`;
    svg('text', { x: ml + n * cw + 8, y: y + ch / 2 + 3.5, class: zeros ? '' : 'muted',
                  style: zeros ? 'fill:#c92a2a;font-weight:600;font-size:10px' : null }, root, txt);
  });
  const zeroTotal = rows.reduce((a, r) => a + r.counts.filter((c) => !(c > 0)).length, 0);
  html('p', { class: 'hint' }, box, zeroTotal
      ? `${zeroTotal} expert slot${zeroTotal > 1 ? 's' : ''} (red) saw no tokens: the quantizer falls back ` +
        'to uniform weights there. More or broader calibration text helps.'
      : 'Every expert saw tokens. Darker = more tokens routed to that expert.');
}

const STATS = [
  { key: 'sum', title: 'Σ(Act²)', log: true },
  { key: 'mean', title: 'μ  mean importance', log: true },
  { key: 'std', title: 'σ  standard deviation', log: true },
  { key: 'active', title: '% active', unit: '%' },
  { key: 'entropy', title: 'Entropy (bits)' },
  { key: 'enorm', title: 'E (norm) %', unit: '%' },
  { key: 'zd', title: 'ZD  % with z > 1', unit: '%' },
  { key: 'cos', title: 'CosSim with previous layer', from: 1 },
];

function seriesBy(rows, value, from) {
  const out = {};
  for (const r of rows) {
    if (r.layer < (from || 0)) continue;
    (out[r.kind] = out[r.kind] || []).push([r.layer, value(r)]);
  }
  return D.kinds.filter((k) => out[k]).map((k) => ({ kind: k, points: out[k].sort((a, b) => a[0] - b[0]) }));
}

function drawLayerCharts() {
  const box = $('layer-charts');
  const rows = D.tensors.filter((t) => t.layer >= 0 && t.stats);
  const kinds = D.kinds.filter((k) => rows.some((t) => t.kind === k));
  kindLegend($('kind-legend'), kinds);
  // Kinds fed by the same input (attn_q/k/v; ffn_gate/up) have identical data: say so, since
  // their lines are drawn on top of each other.
  const sig = (k) => JSON.stringify(rows.filter((t) => t.kind === k).sort((a, b) => a.layer - b.layer)
                                        .map((t) => [t.layer, t.stats.sum, t.stats.max]));
  const groups = {};
  kinds.forEach((k) => { (groups[sig(k)] = groups[sig(k)] || []).push(k); });
  const same = Object.values(groups).filter((g) => g.length > 1).map((g) => g.join(' = '));
  if (same.length)
    html('p', { class: 'hint', id: 'same-input' }, $('kind-legend'),
         'Same input, identical lines (drawn on top of each other): ' + same.join(';  ') + '.');
  for (const st of STATS) {
    const c = html('div', { class: 'chart' }, box);
    layerChart(c, { id: 'chart-' + st.key, title: st.title, log: st.log, percent: !!st.unit,
                    vfmt: st.unit ? (v) => fmt(v) + st.unit : fmt,
                    series: seriesBy(rows, (t) => t.stats[st.key], st.from) });
  }
}
)JS";

}  // namespace imq::imatrix::report_assets
