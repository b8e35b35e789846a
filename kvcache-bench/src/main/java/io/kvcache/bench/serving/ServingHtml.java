package io.kvcache.bench.serving;

import io.kvcache.examples.serving.TurnRecord;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;

/**
 * The serving benchmark's results as one self-contained HTML page: the results table, the cost
 * model's decisions, and three inline SVG plots drawn here (no script, no network): the
 * distribution of time to first token per configuration (returning turns solid, first turns
 * dashed), the mean time to first token by round, and the throughput per configuration.
 */
final class ServingHtml {
    private static final String[] COLORS = {"#d62728", "#1f77b4", "#2ca02c", "#7f7f7f"};
    private static final int W = 720;
    private static final int H = 330;
    private static final int LEFT = 70;
    private static final int RIGHT = 20;
    private static final int TOP = 30;
    private static final int BOTTOM = 50;

    private ServingHtml() {
    }

    /** @return the page */
    static String render(ServingBenchmark.Outcome o) {
        List<ServingMetrics> m = ServingReport.metrics(o);
        StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Serving benchmark</title>\n")
                .append("<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
                        + "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th:first-child,td:first-child"
                        + "{text-align:left}svg{display:block;margin:1em 0}</style></head><body>\n");
        sb.append("<h1>Multi-turn serving benchmark</h1>\n<p>").append(esc(o.platform())).append("; command: <code>")
                .append(esc("kvcache-bench/serving-bench.sh " + o.commandLine())).append("</code></p>\n");
        sb.append("<h2>Cost model</h2>\n<ul>");
        for (String d : ServingReport.decisions(o)) {
            sb.append("<li>").append(esc(d)).append("</li>");
        }
        sb.append("</ul>\n<h2>Results</h2>\n<table><tr><th></th>");
        o.runs().forEach(r -> sb.append("<th>").append(esc(r.config().label())).append("</th>"));
        sb.append("</tr>\n<tr><td>tiers, blocks</td>");
        o.runs().forEach(r -> sb.append("<td>").append(esc(ServingReport.tiers(r))).append("</td>"));
        sb.append("</tr>\n");
        for (ServingReport.Row r : ServingReport.rows(m)) {
            sb.append("<tr><td>").append(esc(r.label())).append("</td>");
            for (int i = 0; i < o.runs().size(); i++) {
                sb.append("<td>").append(esc(r.cell(i))).append("</td>");
            }
            sb.append("</tr>\n");
        }
        sb.append("</table>\n<p>").append(esc(ServingReport.tokenLine(o))).append("</p>\n");
        sb.append("<h2>Time to first token, distribution</h2>\n<p>Solid: returning turns; dashed: first turns.</p>\n")
                .append(cdf(o));
        sb.append("<h2>Time to first token by round</h2>\n").append(byRound(o, m));
        sb.append("<h2>Throughput</h2>\n").append(throughput(o, m));
        sb.append("</body></html>\n");
        return sb.toString();
    }

    private static String cdf(ServingBenchmark.Outcome o) {
        double lo = Double.MAX_VALUE;
        double hi = 0;
        for (ServingBenchmark.ConfigRun r : o.runs()) {
            for (TurnRecord t : r.run().turns()) {
                double ms = Math.max(1e-3, t.ttftNanos() / 1e6);
                lo = Math.min(lo, ms);
                hi = Math.max(hi, ms);
            }
        }
        LogAxis x = new LogAxis(lo, hi);
        StringBuilder sb = frame("time to first token, ms (log)", "fraction of turns");
        x.ticks(sb);
        for (int k = 0; k <= 4; k++) {
            double y = py(k / 4.0);
            sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.2f</text>",
                    LEFT - 5, y + 4, k / 4.0));
        }
        for (int i = 0; i < o.runs().size(); i++) {
            List<TurnRecord> turns = o.runs().get(i).run().turns();
            line(sb, ServingMetrics.ttftSortedMs(turns, TurnRecord::returning), x, COLORS[i % COLORS.length], "");
            line(sb, ServingMetrics.ttftSortedMs(turns, Predicate.not(TurnRecord::returning)), x,
                    COLORS[i % COLORS.length], " stroke-dasharray=\"5,4\"");
        }
        legend(sb, o);
        return sb.append("</svg>\n").toString();
    }

    private static void line(StringBuilder sb, double[] sorted, LogAxis x, String color, String dash) {
        if (sorted.length == 0) {
            return;
        }
        StringBuilder pts = new StringBuilder();
        for (int j = 0; j < sorted.length; j++) {
            double px = x.px(Math.max(1e-3, sorted[j]));
            pts.append(String.format(Locale.ROOT, "%.1f,%.1f %.1f,%.1f ", px, py(j / (double) sorted.length), px,
                    py((j + 1) / (double) sorted.length)));
        }
        sb.append("<polyline fill=\"none\" stroke=\"").append(color).append("\" stroke-width=\"2\"").append(dash)
                .append(" points=\"").append(pts).append("\"/>");
    }

    private static String byRound(ServingBenchmark.Outcome o, List<ServingMetrics> m) {
        int rounds = o.workload().rounds();
        double lo = Double.MAX_VALUE;
        double hi = 0;
        for (ServingMetrics s : m) {
            for (double v : s.meanTtftByRoundMs()) {
                if (v > 0) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        LogAxis y = new LogAxis(lo, hi);
        StringBuilder sb = frame("round (0 = first turn)", "mean TTFT, ms (log)");
        for (double v = y.lo; v <= y.hi * 1.0001; v *= 10) {
            double py = TOP + (H - TOP - BOTTOM) * (1 - y.frac(v));
            sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                    + "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>", LEFT, W - RIGHT, py, py,
                    LEFT - 5, py + 4, LogAxis.label(v)));
        }
        for (int r = 0; r < rounds; r++) {
            sb.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%d</text>",
                    roundX(r, rounds), H - BOTTOM + 15, r));
        }
        for (int i = 0; i < m.size(); i++) {
            StringBuilder pts = new StringBuilder();
            double[] v = m.get(i).meanTtftByRoundMs();
            for (int r = 0; r < rounds; r++) {
                if (v[r] > 0) {
                    pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", roundX(r, rounds),
                            TOP + (H - TOP - BOTTOM) * (1 - y.frac(v[r]))));
                }
            }
            sb.append("<polyline fill=\"none\" stroke=\"").append(COLORS[i % COLORS.length])
                    .append("\" stroke-width=\"2\" points=\"").append(pts).append("\"/>");
        }
        legend(sb, o);
        return sb.append("</svg>\n").toString();
    }

    private static double roundX(int r, int rounds) {
        return LEFT + (W - LEFT - RIGHT) * (rounds == 1 ? 0.5 : (r + 0.5) / rounds);
    }

    private static String throughput(ServingBenchmark.Outcome o, List<ServingMetrics> m) {
        double max = m.stream().mapToDouble(ServingMetrics::answerTokensPerS).max().orElse(1);
        StringBuilder sb = frame("configuration", "answer tokens/s");
        int n = m.size();
        double slot = (W - LEFT - RIGHT) / (double) n;
        for (int i = 0; i < n; i++) {
            double v = m.get(i).answerTokensPerS();
            double h = (H - TOP - BOTTOM) * v / max;
            double x = LEFT + slot * i + slot * 0.2;
            sb.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>"
                            + "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">%.1f</text>"
                            + "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%s</text>",
                    x, H - BOTTOM - h, slot * 0.6, h, COLORS[i % COLORS.length], x + slot * 0.3, H - BOTTOM - h - 4, v,
                    x + slot * 0.3, H - BOTTOM + 15, esc(o.runs().get(i).config().label())));
        }
        return sb.append("</svg>\n").toString();
    }

    private static StringBuilder frame(String xLabel, String yLabel) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                        + "font-family=\"sans-serif\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                        + "stroke=\"#999\"/><text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">%s</text>"
                        + "<text transform=\"translate(15,%d) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">%s</text>",
                W, H, LEFT, TOP, W - LEFT - RIGHT, H - TOP - BOTTOM, (LEFT + W - RIGHT) / 2, H - 10, esc(xLabel),
                (TOP + H - BOTTOM) / 2, esc(yLabel)));
        return sb;
    }

    private static void legend(StringBuilder sb, ServingBenchmark.Outcome o) {
        for (int i = 0; i < o.runs().size(); i++) {
            int x = LEFT + 10 + i * 160;
            sb.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"8\" width=\"14\" height=\"10\" fill=\"%s\"/>"
                    + "<text x=\"%d\" y=\"17\" font-size=\"11\">%s</text>", x, COLORS[i % COLORS.length], x + 18,
                    esc(o.runs().get(i).config().label())));
        }
    }

    private static double py(double frac) {
        return TOP + (H - TOP - BOTTOM) * (1 - frac);
    }

    /** A base-10 log axis over whole decades. */
    private static final class LogAxis {
        final double lo;
        final double hi;

        LogAxis(double lo, double hi) {
            double l = lo > 0 && lo != Double.MAX_VALUE ? lo : 1;
            double h = hi > l ? hi : l * 10;
            this.lo = Math.pow(10, Math.floor(Math.log10(l)));
            this.hi = Math.max(this.lo * 10, Math.pow(10, Math.ceil(Math.log10(h))));
        }

        double frac(double v) {
            return (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo));
        }

        double px(double v) {
            return LEFT + (W - LEFT - RIGHT) * frac(v);
        }

        void ticks(StringBuilder sb) {
            for (double v = lo; v <= hi * 1.0001; v *= 10) {
                double x = px(v);
                sb.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#eee\"/>"
                        + "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%s</text>", x, x, TOP,
                        H - BOTTOM, x, H - BOTTOM + 15, label(v)));
            }
        }

        static String label(double v) {
            return v >= 1 ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%s", v);
        }
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
