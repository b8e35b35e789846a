package io.kvcache.bench.serving;

import io.kvcache.core.cost.CostModel;
import io.kvcache.examples.demo.ByteSize;
import io.kvcache.examples.serving.Workload;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The serving benchmark's results as a plain-text table (printed at the end of a run) and as
 * Markdown (committed under {@code kvcache-bench/results/}): one column per configuration, each
 * figure followed by its ratio to configuration 1.
 */
final class ServingReport {
    private ServingReport() {
    }

    /**
     * A figure per configuration.
     *
     * @param label  what it is
     * @param values one per configuration run, in run order
     * @param format how a value prints
     */
    record Row(String label, double[] values, String format) {
        String cell(int i) {
            double v = values[i];
            if (Double.isNaN(v)) {
                return "-";
            }
            String s = format.equals("bytes") ? ByteSize.format((long) v) : String.format(Locale.ROOT, format, v);
            if (i == 0 || Double.isNaN(values[0]) || values[0] == 0) {
                return s;
            }
            return s + String.format(Locale.ROOT, " (%s)", ratio(v / values[0]));
        }
    }

    static String ratio(double r) {
        return r >= 10 ? String.format(Locale.ROOT, "%.0fx", r) : r >= 0.1
                ? String.format(Locale.ROOT, "%.2fx", r) : String.format(Locale.ROOT, "%.3fx", r);
    }

    /** @return per configuration run, its figures */
    static List<ServingMetrics> metrics(ServingBenchmark.Outcome o) {
        return o.runs().stream().map(r -> ServingMetrics.of(r, o.workload().rounds())).toList();
    }

    static List<Row> rows(List<ServingMetrics> m) {
        List<Row> rows = new ArrayList<>();
        String[] p = {"p50", "p95", "p99"};
        for (int i = 0; i < p.length; i++) {
            int k = i;
            rows.add(new Row("TTFT first turns " + p[i] + ", ms", m.stream().mapToDouble(x -> x.ttftFirstMs()[k]).toArray(), "%.1f"));
        }
        for (int i = 0; i < p.length; i++) {
            int k = i;
            rows.add(new Row("TTFT returning turns " + p[i] + ", ms",
                    m.stream().mapToDouble(x -> x.ttftReturningMs()[k]).toArray(), "%.1f"));
        }
        rows.add(new Row("decode tokens/s", m.stream().mapToDouble(ServingMetrics::decodeTokensPerS).toArray(), "%.0f"));
        rows.add(new Row("throughput, answer tokens/s", m.stream().mapToDouble(ServingMetrics::answerTokensPerS).toArray(), "%.1f"));
        rows.add(new Row("turns/s", m.stream().mapToDouble(ServingMetrics::turnsPerS).toArray(), "%.2f"));
        rows.add(new Row("wall time, s", m.stream().mapToDouble(ServingMetrics::wallS).toArray(), "%.1f"));
        rows.add(new Row("prefill compute, s", m.stream().mapToDouble(ServingMetrics::prefillS).toArray(), "%.2f"));
        rows.add(new Row("prompt tokens computed", m.stream().mapToDouble(ServingMetrics::prefillTokens).toArray(), "%.0f"));
        String[] tier = {"device", "host", "disk"};
        for (int t = 0; t < tier.length; t++) {
            int k = t;
            rows.add(new Row("prefix hits in " + tier[t] + ", blocks", m.stream().mapToDouble(x -> x.hitsPerTier()[k]).toArray(), "%.0f"));
        }
        rows.add(new Row("bytes copied toward the device", m.stream().mapToDouble(ServingMetrics::bytesUp).toArray(), "bytes"));
        rows.add(new Row("bytes copied down the tiers", m.stream().mapToDouble(ServingMetrics::bytesDown).toArray(), "bytes"));
        rows.add(new Row("sessions held at once", m.stream().mapToDouble(ServingMetrics::sessionsHeld).toArray(), "%.0f"));
        return rows;
    }

    /** @return per tier below the device: what the cost model decided and the numbers it decided from */
    static List<String> decisions(ServingBenchmark.Outcome o) {
        CostModel cm = o.costModel();
        List<String> lines = new ArrayList<>();
        double rec = cm.recomputeSeconds() / o.layout().blockTokens() * 1e6;
        for (int t = 1; t < cm.tierCount(); t++) {
            double rel = cm.reloadSeconds(t) / o.layout().blockTokens() * 1e6;
            CostModel.Link l = o.links().get(t - 1);
            lines.add(String.format(Locale.ROOT, "%s: %s. Reloading a block of %d tokens takes %.1f us (%.2f GB/s, "
                            + "%.1f us fixed) = %.2f us a token, recomputing it %.1f us a token (prefill at %.0f tokens/s): "
                            + "reloading is %s.", l.tierName(), cm.reloadPays(t) ? "reload" : "recompute",
                    o.layout().blockTokens(), cm.reloadSeconds(t) * 1e6, l.bytesPerSecond() / 1e9, l.latencySeconds() * 1e6,
                    rel, rec, o.prefillTokensPerSecond(), cm.reloadPays(t)
                            ? String.format(Locale.ROOT, "%.0fx cheaper", rec / rel)
                            : String.format(Locale.ROOT, "%.1fx dearer, so blocks there are recomputed", rel / rec)));
        }
        return lines;
    }

    /** @return the results table and the token check, for the console */
    static String text(ServingBenchmark.Outcome o) {
        List<ServingMetrics> m = metrics(o);
        List<Row> rows = rows(m);
        StringBuilder sb = new StringBuilder();
        int w0 = rows.stream().mapToInt(r -> r.label().length()).max().orElse(10) + 2;
        int[] widths = new int[o.runs().size()];
        for (int i = 0; i < widths.length; i++) {
            int k = i;
            widths[i] = Math.max(o.runs().get(i).config().label().length(),
                    rows.stream().mapToInt(r -> r.cell(k).length()).max().orElse(8)) + 2;
        }
        sb.append(String.format(Locale.ROOT, "%-" + w0 + "s", ""));
        for (int i = 0; i < widths.length; i++) {
            sb.append(String.format(Locale.ROOT, "%" + widths[i] + "s", o.runs().get(i).config().label()));
        }
        sb.append('\n');
        sb.append(String.format(Locale.ROOT, "%-" + w0 + "s", "tiers, blocks"));
        for (int i = 0; i < widths.length; i++) {
            sb.append(String.format(Locale.ROOT, "%" + widths[i] + "s", tiers(o.runs().get(i))));
        }
        sb.append('\n');
        for (Row r : rows) {
            sb.append(String.format(Locale.ROOT, "%-" + w0 + "s", r.label()));
            for (int i = 0; i < widths.length; i++) {
                sb.append(String.format(Locale.ROOT, "%" + widths[i] + "s", r.cell(i)));
            }
            sb.append('\n');
        }
        sb.append("ratios in parentheses: to configuration ").append(o.runs().getFirst().config().number()).append('\n');
        sb.append("cost model: ").append(String.join(" ", decisions(o))).append('\n');
        sb.append(tokenLine(o)).append('\n');
        return sb.toString();
    }

    static String tiers(ServingBenchmark.ConfigRun r) {
        return r.deviceBlocks() + (r.hostBlocks() > 0 ? " + " + r.hostBlocks() : "")
                + (r.diskBlocks() > 0 ? " + " + r.diskBlocks() : "");
    }

    static String tokenLine(ServingBenchmark.Outcome o) {
        if (o.tokenScope() != null) {
            return (o.tokenDifference() == null ? "tokens: the same answer tokens on every compared turn (greedy): yes. "
                    : "tokens: DIFFERENT: " + o.tokenDifference() + ". ") + o.tokenScope();
        }
        return o.tokenDifference() == null
                ? "tokens: every configuration generated the same answer tokens for every turn (greedy): yes"
                : "tokens: DIFFERENT: " + o.tokenDifference();
    }

    /** @return the results as a Markdown page */
    static String markdown(ServingBenchmark.Outcome o) {
        Workload w = o.workload();
        List<ServingMetrics> m = metrics(o);
        StringBuilder sb = new StringBuilder();
        sb.append("# Multi-turn serving benchmark: ").append(o.platform()).append("\n\n");
        sb.append("Run ").append(java.time.ZonedDateTime.now(java.time.ZoneOffset.UTC).withNano(0)
                .format(java.time.format.DateTimeFormatter.ISO_OFFSET_DATE_TIME)).append(". Command (from the repository root, or "
                + "serving-bench.sh of the GPU bundle):\n\n```\nkvcache-bench/serving-bench.sh ").append(o.commandLine())
                .append("\n```\n\n");
        sb.append(String.format(Locale.ROOT, "Workload: %d users x %d rounds, a shared system prompt of %d tokens, then %d tokens "
                        + "of the user's own context in the first round, per round a question of %d and an answer of %d "
                        + "tokens; %s. KV: %s a token, blocks of %d tokens (%s); the users' histories are %d blocks (%s), "
                        + "%.1fx the device budget of configurations 1-3.\n\n",
                w.users(), w.rounds(), w.systemTokens(), w.contextTokens(), w.questionTokens(), w.answerTokens(),
                w.poisson() ? String.format(Locale.ROOT, "Poisson arrivals at %.2f turns/s, at most %d served at once",
                        w.arrivalsPerSecond(), w.concurrency()) : "a closed loop of " + w.concurrency() + " clients",
                ByteSize.format(o.layout().bytesPerToken()), o.layout().blockTokens(), ByteSize.format(o.layout().blockBytes()),
                w.uniqueKvBlocks(o.layout().blockTokens()), ByteSize.format(w.uniqueKvBlocks(o.layout().blockTokens())
                        * o.layout().blockBytes()), w.uniqueKvBlocks(o.layout().blockTokens())
                        / (double) o.runs().getFirst().deviceBlocks()));
        sb.append("Cost model (links and prefill rate measured in the same run, before the configurations):\n\n");
        for (String d : decisions(o)) {
            sb.append("- ").append(d).append('\n');
        }
        sb.append("\n| | ");
        o.runs().forEach(r -> sb.append(r.config().label()).append(" | "));
        sb.append("\n|---|");
        o.runs().forEach(r -> sb.append("---|"));
        sb.append("\n| tiers, blocks (device + host + disk) | ");
        o.runs().forEach(r -> sb.append(tiers(r)).append(" | "));
        sb.append('\n');
        for (Row r : rows(m)) {
            sb.append("| ").append(r.label()).append(" | ");
            for (int i = 0; i < o.runs().size(); i++) {
                sb.append(r.cell(i)).append(" | ");
            }
            sb.append('\n');
        }
        sb.append("\nRatios in parentheses are to configuration ").append(o.runs().getFirst().config().number())
                .append(". TTFT counts from a turn's arrival (in the closed loop: when its client's previous turn "
                        + "ended) to its first token, queueing behind other prefills included. Sessions held: users "
                        + "whose every full block of history sat, after the last turn, in a tier the cache reuses. Prefix hits "
                        + "include the shared system prompt.\n\n");
        sb.append(tokenLine(o)).append("\n");
        return sb.toString();
    }
}
