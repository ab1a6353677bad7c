// The report page's inline assets (report_css.cpp, report_js_*.cpp): plain text pasted into
// the page by render_report. The scripts read the data blob and draw every section.
#pragma once

namespace imq::imatrix::report_assets {

extern const char kCss[];
extern const char kJsHead[];    // error capture (runs first, in <head>)
extern const char kJsBase[];    // helpers: DOM, formatting, colours, tooltip, axes, line chart
extern const char kJsViews[];   // header, heatmap, experts, per-layer charts
extern const char kJsDetail[];  // distribution, comparison, statistics table, start-up

}  // namespace imq::imatrix::report_assets
