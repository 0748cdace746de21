/**
 * The live page's style sheet, dense as HAProxy's stats page: one table, a service port row over
 * its endpoint rows, colour for state (green: serving, amber: no endpoints, red: not open).
 */
export const STATUS_PAGE_STYLE = `
body { font: 12.5px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px 20px; color: #1d2329; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 22px 0 6px; }
header p { margin: 2px 0; color: #4a5560; }
a { color: #0b5cad; text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; width: 100%; margin-top: 10px; }
main { overflow-x: auto; }
th, td { padding: 3px 7px; border-bottom: 1px solid #e3e7eb; text-align: left; vertical-align: top; white-space: nowrap; }
th { background: #2c3e50; color: #fff; font-weight: 600; position: sticky; top: 0; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.sp td { font-weight: 600; border-top: 2px solid #c9d1d8; }
tr.sp.up td:first-child { border-left: 6px solid #2e9e44; }
tr.sp.noep td:first-child { border-left: 6px solid #e0a800; }
tr.sp.down td:first-child { border-left: 6px solid #d0312d; }
tr.sp.up { background: #eef8f0; }
tr.sp.noep { background: #fdf6e3; }
tr.sp.down { background: #fdecea; }
tr.ep td:first-child { padding-left: 24px; color: #4a5560; }
tr.ep.drain { color: #8a949e; font-style: italic; }
tr.sel td:first-child a::before { content: '\\25B6  '; color: #0b5cad; }
td.bad { color: #d0312d; font-weight: 700; }
td.busy { color: #1a7f37; font-weight: 700; }
.ok { color: #1a7f37; }
.down { color: #d0312d; }
.warn { color: #9a6700; }
.muted { color: #8a949e; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 6px; border-left: 6px solid; }
.legend .up { border-color: #2e9e44; } .legend .noep { border-color: #e0a800; } .legend .down { border-color: #d0312d; }
section#path { border: 1px solid #c9d1d8; border-radius: 4px; padding: 2px 14px 8px; margin: 14px 0; background: #fbfcfd; }
section#path h2 { margin-top: 10px; }
ol.path { padding-left: 20px; margin: 6px 0; }
ol.path li { margin: 4px 0; }
pre.rules { background: #f6f8fa; border: 1px solid #e3e7eb; padding: 8px 10px; overflow-x: auto; font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; }
pre.rules mark { background: #fff3b0; }
nav.pages a, nav.pages b { margin-right: 8px; }
`;
