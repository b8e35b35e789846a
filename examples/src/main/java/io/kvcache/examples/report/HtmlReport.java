package io.kvcache.examples.report;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Writes a decode's {@link StepTrace} as one self-contained HTML page: the numbers are embedded as
 * JSON and an inline script draws three SVG plots (blocks held per tier over the decode steps,
 * latency per step with the part spent waiting for residency, and bytes moved per step in each
 * direction). No network, no external file: it opens from disk in any browser.
 */
public final class HtmlReport {

    /**
     * A row of the summary table shown above the plots.
     *
     * @param label what the value is
     * @param value the value, already formatted
     */
    public record Row(String label, String value) {
    }

    private HtmlReport() {
    }

    /**
     * @param file     where to write (replaced)
     * @param title    page heading
     * @param subtitle one line about the run (model, budgets)
     * @param summary  rows of the summary table
     * @param trace    per-step measurements of the decode
     * @throws IOException when the file cannot be written
     */
    public static void write(Path file, String title, String subtitle, List<Row> summary, StepTrace trace)
            throws IOException {
        Files.writeString(file, render(title, subtitle, summary, trace), StandardCharsets.UTF_8);
    }

    /** @return the page */
    public static String render(String title, String subtitle, List<Row> summary, StepTrace trace) {
        StringBuilder json = new StringBuilder(64 + trace.steps() * 64);
        json.append("{\"blockTokens\":").append(trace.blockTokens()).append(",\"positions\":");
        ints(json, trace.steps(), trace::position);
        json.append(",\"latencyMs\":");
        doubles(json, trace.steps(), i -> trace.nanos(i) / 1e6);
        json.append(",\"waitMs\":");
        doubles(json, trace.steps(), i -> trace.waitNanos(i) / 1e6);
        json.append(",\"upKiB\":");
        doubles(json, trace.steps(), i -> trace.bytesUp(i) / 1024.0);
        json.append(",\"downKiB\":");
        doubles(json, trace.steps(), i -> trace.bytesDown(i) / 1024.0);
        json.append(",\"tiers\":[");
        for (int t = 0; t < trace.tierNames().size(); t++) {
            int tier = t;
            json.append(t == 0 ? "" : ",").append("{\"name\":").append(jsonString(trace.tierNames().get(t)))
                    .append(",\"slots\":").append(trace.tierSlots(t)).append(",\"used\":");
            ints(json, trace.steps(), i -> trace.used(tier, i));
            json.append('}');
        }
        json.append("]}");

        StringBuilder rows = new StringBuilder();
        for (Row r : summary) {
            rows.append("<tr><th>").append(html(r.label())).append("</th><td>").append(html(r.value()))
                    .append("</td></tr>\n");
        }
        return PAGE.replace("@TITLE@", html(title))
                .replace("@SUBTITLE@", html(subtitle))
                .replace("@ROWS@", rows)
                .replace("@DATA@", json);
    }

    private static void ints(StringBuilder sb, int n, java.util.function.IntUnaryOperator f) {
        sb.append('[');
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                sb.append(',');
            }
            sb.append(f.applyAsInt(i));
        }
        sb.append(']');
    }

    private static void doubles(StringBuilder sb, int n, java.util.function.IntToDoubleFunction f) {
        sb.append('[');
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                sb.append(',');
            }
            double v = f.applyAsDouble(i);
            sb.append(Double.isFinite(v) ? String.format(Locale.ROOT, "%.4g", v) : "0");
        }
        sb.append(']');
    }

    static String html(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }

    static String jsonString(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                // escaping < keeps "</script>" inside a name from ending the data block
                b.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    private static final String PAGE = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>@TITLE@</title>
            <style>
              body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
              h1 { font-size: 20px; margin: 0 0 4px; }
              p.sub { color: #555; margin: 0 0 16px; }
              table { border-collapse: collapse; margin-bottom: 20px; }
              th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid #eee; vertical-align: top; }
              th { font-weight: 600; color: #444; }
              .plot { margin: 8px 0 24px; }
              .plot h2 { font-size: 15px; margin: 0 0 4px; }
              svg { background: #fafafa; border: 1px solid #ddd; }
              .axis { stroke: #888; stroke-width: 1; }
              .grid { stroke: #e4e4e4; stroke-width: 1; }
              .tick { fill: #555; font-size: 11px; }
              .series { fill: none; stroke-width: 1.6; }
              .legend { font-size: 12px; fill: #333; }
            </style>
            </head>
            <body>
            <h1>@TITLE@</h1>
            <p class="sub">@SUBTITLE@</p>
            <table>
            @ROWS@</table>
            <div id="plots"><noscript>The plots are drawn by the script in this page; enable JavaScript to see them.</noscript></div>
            <script type="application/json" id="data">@DATA@</script>
            <script>
            (function () {
              const data = JSON.parse(document.getElementById('data').textContent);
              const NS = 'http://www.w3.org/2000/svg';
              const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
              const x = data.positions;
              function el(name, attrs, parent) {
                const e = document.createElementNS(NS, name);
                for (const k in attrs) e.setAttribute(k, attrs[k]);
                if (parent) parent.appendChild(e);
                return e;
              }
              function niceMax(v) {
                if (!(v > 0)) return 1;
                const p = Math.pow(10, Math.floor(Math.log10(v)));
                for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
                return 10 * p;
              }
              function percentile(values, q) {
                const v = values.filter(Number.isFinite).sort((a, b) => a - b);
                return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : 0;
              }
              function plot(title, yLabel, series, clip) {
                const W = 920, H = 260, L = 64, R = 190, T = 12, B = 36;
                const box = document.createElement('div');
                box.className = 'plot';
                const h = document.createElement('h2');
                h.textContent = title;
                box.appendChild(h);
                const svg = el('svg', {width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title});
                box.appendChild(svg);
                document.getElementById('plots').appendChild(box);
                const n = x.length;
                const x0 = n ? x[0] : 0, x1 = n ? x[n - 1] : 1;
                let ymax = 0;
                for (const s of series) for (const v of s.values) if (v > ymax) ymax = v;
                let clipped = false;
                if (clip) {
                  // a few outliers (a GC pause, a burst of copies) would flatten every other step
                  const p = 1.5 * Math.max(...series.map(s => percentile(s.values, 0.99)));
                  if (p > 0 && p < ymax) { ymax = p; clipped = true; }
                }
                ymax = niceMax(ymax);
                if (clipped) h.textContent += ' (axis cut at 1.5 x the 99th percentile)';
                const sx = v => L + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (W - L - R);
                const sy = v => H - B - (Math.min(v, ymax) / ymax) * (H - T - B);
                for (let i = 0; i <= 4; i++) {
                  const v = ymax * i / 4, y = sy(v);
                  el('line', {x1: L, x2: W - R, y1: y, y2: y, class: 'grid'}, svg);
                  el('text', {x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'tick'}, svg).textContent =
                      (Math.abs(v) >= 100 ? v.toFixed(0) : +v.toPrecision(3)).toString();
                }
                const xstep = niceMax((x1 - x0) / 6 || 1);
                for (let v = Math.ceil(x0 / xstep) * xstep; v <= x1; v += xstep) {
                  el('text', {x: sx(v), y: H - B + 16, 'text-anchor': 'middle', class: 'tick'}, svg).textContent = Math.round(v);
                }
                el('text', {x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle', class: 'tick'}, svg).textContent = 'position (decode step)';
                el('text', {x: 12, y: (T + H - B) / 2, 'text-anchor': 'middle', class: 'tick',
                    transform: 'rotate(-90 12 ' + (T + H - B) / 2 + ')'}, svg).textContent = yLabel;
                el('line', {x1: L, x2: L, y1: T, y2: H - B, class: 'axis'}, svg);
                el('line', {x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis'}, svg);
                series.forEach((s, k) => {
                  let d = '';
                  for (let i = 0; i < n; i++) d += (i ? 'L' : 'M') + sx(x[i]).toFixed(1) + ',' + sy(s.values[i]).toFixed(1);
                  const color = s.color || COLORS[k % COLORS.length];
                  const attrs = {d: d, class: 'series', stroke: color, 'data-points': n, 'data-name': s.name};
                  if (s.dash) attrs['stroke-dasharray'] = s.dash;
                  el('path', attrs, svg);
                  el('rect', {x: W - R + 12, y: T + 6 + k * 18, width: 12, height: 3, fill: color}, svg);
                  el('text', {x: W - R + 30, y: T + 11 + k * 18, class: 'legend'}, svg).textContent = s.name;
                });
              }
              plot('Blocks held per tier, and the context in blocks', 'blocks',
                  data.tiers.map(t => ({name: t.name + ' (' + t.slots + ' slots)', values: t.used}))
                      .concat([{name: 'context', color: '#777', dash: '4 3',
                          values: x.map(p => Math.ceil((p + 1) / data.blockTokens))}]));
              plot('Latency per step', 'ms', [
                  {name: 'step', values: data.latencyMs},
                  {name: 'waiting for residency', values: data.waitMs}], true);
              plot('Bytes moved per step', 'KiB', [
                  {name: 'toward device', values: data.upKiB},
                  {name: 'down the tiers', values: data.downKiB, dash: '5 4'}]);
              document.body.setAttribute('data-plots-drawn', document.querySelectorAll('svg path.series').length > 0
                  ? String(document.querySelectorAll('svg').length) : '0');
            })();
            </script>
            </body>
            </html>
            """;
}
