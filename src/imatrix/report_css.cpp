// The report's style sheet and its first script (error capture).
#include "imatrix/report_assets.h"

namespace imq::imatrix::report_assets {

const char kCss[] = R"CSS(
:root { --fg:#1d2330; --muted:#5f6b7a; --line:#e3e7ee; --card:#ffffff; --bg:#f3f5f9;
        --bad:#c92a2a; --warn:#b7791f; --ok:#2b8a3e; --accent:#3b5bdb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 13px/1.45 "DejaVu Sans", "Liberation Sans", system-ui, sans-serif; }
main, header { max-width: 1380px; margin: 0 auto; padding: 0 18px; }
header { padding-top: 16px; }
h1 { font-size: 21px; margin: 0 0 2px; font-weight: 600; }
h1 .sub { color: var(--muted); font-weight: 400; font-size: 15px; margin-left: 8px; }
h2 { font-size: 15px; margin: 0 0 4px; font-weight: 600; }
.hint { color: var(--muted); font-size: 12px; margin: 0 0 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
        padding: 14px 16px; margin: 12px 0; box-shadow: 0 1px 2px rgba(20,30,50,.04); }
.row { display: flex; gap: 12px; flex-wrap: wrap; align-items: stretch; margin: 12px 0; }
.row > .card { margin: 0; }
.grow { flex: 1 1 0; min-width: 320px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px 18px;
         margin-top: 10px; }
.fact.wide { grid-column: span 2; }
.fact .k { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .04em; }
.fact .v { font-size: 15px; font-weight: 600; word-break: break-all; }
.fact .v.small { font-size: 12px; font-weight: 400; }
.filetag { display: inline-block; min-width: 18px; text-align: center; border-radius: 4px;
           font-size: 11px; font-weight: 700; color: #fff; padding: 0 4px; margin-right: 4px; }
.filetag.a { background: #3b5bdb; } .filetag.b { background: #e8590c; }
#warnings { margin-top: 10px; }
.warnbox { border-radius: 6px; padding: 8px 12px; font-size: 12.5px; }
.warnbox.ok { background: #ebfbee; color: var(--ok); border: 1px solid #b2f2bb; }
.warnbox.has { background: #fff9db; border: 1px solid #ffe066; }
.warnbox ul { margin: 4px 0 0; padding-left: 18px; }
.warnbox li.bad { color: var(--bad); }
.warnbox li.warn { color: #7c5a10; }
.warnbox .t { font-family: "DejaVu Sans Mono", monospace; font-size: 11.5px; }
.warnbox summary { cursor: pointer; color: var(--muted); margin-top: 4px; }
#errors { background: #fff0f0; border: 2px solid var(--bad); color: var(--bad); border-radius: 6px;
          padding: 8px 12px; margin: 12px auto; max-width: 1344px; font-weight: 600; }
svg { display: block; max-width: 100%; height: auto; overflow: visible; }
svg text { fill: var(--fg); font-size: 11px; }
svg .axis text, svg text.muted { fill: var(--muted); font-size: 10px; }
svg .grid line { stroke: #edf0f4; }
svg .axis line, svg .axis path { stroke: #aab3c0; }
svg .title { font-weight: 600; font-size: 12px; }
.cell { stroke: #fff; stroke-width: 1; cursor: pointer; }
.cell:hover, .ecell:hover { stroke: #111; stroke-width: 1.5; }
.ecell { stroke: #fff; stroke-width: .5; }
.charts { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; }
.charts .chart { border: 1px solid var(--line); border-radius: 6px; padding: 6px 6px 2px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 8px; margin: 4px 0 10px; }
.chip { display: inline-flex; align-items: center; gap: 5px; border: 1px solid var(--line);
        border-radius: 12px; padding: 1px 9px 1px 6px; cursor: pointer; user-select: none;
        font-size: 12px; background: #fff; }
.chip i { width: 14px; height: 4px; border-radius: 2px; display: inline-block; }
.chip.off { opacity: .35; }
.off { display: none; }
.series path { fill: none; stroke-width: 1.8; }
.guide { stroke: #333; stroke-dasharray: 3 3; }
.dist { display: grid; grid-template-columns: 1fr 1fr 330px; gap: 12px; align-items: start; }
select { font: inherit; padding: 3px 6px; border: 1px solid #c5ccd6; border-radius: 5px;
         max-width: 100%; background: #fff; }
.toolbar { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin-bottom: 8px; }
table.data { border-collapse: collapse; width: 100%; font-size: 12px; }
table.data th, table.data td { padding: 3px 7px; border-bottom: 1px solid var(--line);
                               text-align: right; white-space: nowrap; }
table.data th { position: sticky; top: 0; background: #f7f8fb; cursor: pointer; font-weight: 600; }
table.data td.l, table.data th.l { text-align: left; }
table.data tr:hover td { background: #f3f6ff; }
.mono { font-family: "DejaVu Sans Mono", monospace; }
.nanval { color: var(--bad); font-weight: 700; }
.scroll { max-height: 460px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
.bar { display: inline-block; height: 8px; border-radius: 2px; vertical-align: middle;
       margin-right: 6px; background: #4c6ef5; }
#tooltip { position: fixed; z-index: 10; pointer-events: none; background: rgba(22,27,38,.94);
           color: #f1f3f5; padding: 6px 9px; border-radius: 5px; font-size: 12px; white-space: pre;
           font-family: "DejaVu Sans Mono", monospace; box-shadow: 0 2px 8px rgba(0,0,0,.25); }
footer { color: var(--muted); font-size: 11px; text-align: center; padding: 16px; }
@media (max-width: 1100px) { .charts { grid-template-columns: repeat(2, 1fr); }
                             .dist { grid-template-columns: 1fr; } }
)CSS";

// Registered before anything else runs: any script error becomes a visible line in #errors
// (class "error"), which the headless-browser test looks for.
const char kJsHead[] = R"JS(
window.imqError = function (msg) {
  var box = document.getElementById('errors');
  if (!box) { (window.imqPending = window.imqPending || []).push(msg); return; }
  var d = document.createElement('div');
  d.className = 'error';
  d.textContent = msg;
  box.appendChild(d);
  box.hidden = false;
};
window.addEventListener('error', function (ev) {
  window.imqError('JavaScript error: ' + ev.message + ' (line ' + ev.lineno + ')');
});
)JS";

}  // namespace imq::imatrix::report_assets
