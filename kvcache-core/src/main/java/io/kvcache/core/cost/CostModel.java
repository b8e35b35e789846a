package io.kvcache.core.cost;

import io.kvcache.core.layout.KvLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Whether bringing a block back from a tier is cheaper than recomputing its tokens. Per tier:
 * the bandwidth and fixed latency of moving one block from that tier to the top tier; for the
 * engine: the seconds one token of prefill costs. The same numbers answer "does offloading pay
 * on this machine for this model?" as a {@link #report()}.
 *
 * <p>Example, from the H200 baseline: a Llama-3-8B-shaped block of 16 tokens is 2 MiB; over
 * PCIe at 55 GB/s it reloads in ~38 us (2.4 us a token) against ~20-40 us a token to recompute,
 * so the host tier pays about 10x; from a 1.5 GB/s disk it takes ~85 us a token and loses.
 */
public final class CostModel {
    private final KvLayout layout;
    private final double recomputeSecondsPerToken;
    private final List<Link> links;

    /**
     * Moving a block from one tier to the top tier.
     *
     * @param tierName       tier the block comes from
     * @param bytesPerSecond sustained bandwidth, > 0
     * @param latencySeconds fixed cost per block (submission, seek), >= 0
     */
    public record Link(String tierName, double bytesPerSecond, double latencySeconds) {
        public Link {
            Objects.requireNonNull(tierName, "tierName");
            if (!(bytesPerSecond > 0) || Double.isInfinite(bytesPerSecond)) {
                throw new IllegalArgumentException("bandwidth of tier '" + tierName + "' must be positive and finite, was "
                        + bytesPerSecond + " B/s");
            }
            if (!(latencySeconds >= 0) || Double.isInfinite(latencySeconds)) {
                throw new IllegalArgumentException("latency of tier '" + tierName + "' must be >= 0 and finite, was "
                        + latencySeconds + " s");
            }
        }
    }

    /**
     * @param layout                   the cache layout (block size and tokens per block)
     * @param recomputeSecondsPerToken seconds of prefill compute per token, > 0
     * @param links                    per tier below the top, in tier order: the cost of moving
     *                                 a block up from it; the top tier itself costs nothing
     */
    public CostModel(KvLayout layout, double recomputeSecondsPerToken, List<Link> links) {
        this.layout = Objects.requireNonNull(layout, "layout");
        if (!(recomputeSecondsPerToken > 0) || Double.isInfinite(recomputeSecondsPerToken)) {
            throw new IllegalArgumentException("recompute cost must be positive and finite, was "
                    + recomputeSecondsPerToken + " s/token");
        }
        this.recomputeSecondsPerToken = recomputeSecondsPerToken;
        this.links = List.copyOf(links);
    }

    /** @return seconds to bring one block from tier {@code tier} (0 = top) to the top */
    public double reloadSeconds(int tier) {
        if (tier == 0) {
            return 0;
        }
        Link l = link(tier);
        return l.latencySeconds() + layout.blockBytes() / l.bytesPerSecond();
    }

    /** @return seconds to recompute one block's tokens */
    public double recomputeSeconds() {
        return recomputeSecondsPerToken * layout.blockTokens();
    }

    /** @return whether a block held in {@code tier} is worth reloading rather than recomputing */
    public boolean reloadPays(int tier) {
        return reloadSeconds(tier) < recomputeSeconds();
    }

    private Link link(int tier) {
        if (tier < 1 || tier > links.size()) {
            throw new IllegalArgumentException("no link for tier " + tier + "; the model knows tiers 1.." + links.size());
        }
        return links.get(tier - 1);
    }

    /** @return the tiers the model knows, the top tier included */
    public int tierCount() {
        return links.size() + 1;
    }

    /**
     * @return a plain-text table: per tier, reload cost per token, recompute cost per token, the
     *     ratio, and the verdict
     */
    public String report() {
        List<String> rows = new ArrayList<>();
        rows.add(String.format(Locale.ROOT, "%-10s %14s %16s %8s  %s", "tier", "reload us/tok", "recompute us/tok",
                "ratio", "verdict"));
        double rec = recomputeSecondsPerToken * 1e6;
        for (int t = 1; t <= links.size(); t++) {
            double rel = reloadSeconds(t) / layout.blockTokens() * 1e6;
            rows.add(String.format(Locale.ROOT, "%-10s %14.2f %16.2f %8.2f  %s", links.get(t - 1).tierName(), rel, rec,
                    rec / rel, reloadPays(t) ? "reload (offloading pays)" : "recompute (offloading loses)"));
        }
        return String.join("\n", rows);
    }
}
