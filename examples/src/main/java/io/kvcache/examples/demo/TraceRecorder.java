package io.kvcache.examples.demo;

import io.kvcache.core.KvCacheManager;
import io.kvcache.core.stats.CacheStats;
import io.kvcache.core.stats.TierStats;
import io.kvcache.examples.engine.StepListener;
import io.kvcache.examples.report.StepTrace;
import java.util.StringJoiner;

/**
 * Samples the cache's counters after every decode step into a {@link StepTrace} (blocks per tier,
 * bytes moved each way, time waited) and draws the progress bar with the tiers' occupancy.
 */
final class TraceRecorder implements StepListener {
    private final KvCacheManager cache;
    private final StepTrace trace;
    private final ProgressBar bar;
    private final int[] used;
    private long up;
    private long down;
    private long wait;

    /** @param bar the progress bar to draw, or null for none */
    TraceRecorder(KvCacheManager cache, StepTrace trace, ProgressBar bar) {
        this.cache = cache;
        this.trace = trace;
        this.bar = bar;
        this.used = new int[cache.tiers().size()];
    }

    @Override
    public void onStep(int pos, int done, int total, long nanos) {
        // one snapshot per step, not per block: the step's cost dwarfs it
        CacheStats s = cache.stats();
        StringJoiner detail = new StringJoiner("  ");
        for (int t = 0; t < used.length; t++) {
            TierStats ts = s.tiers().get(t);
            used[t] = ts.usedSlots();
            detail.add(ts.name() + " " + ts.usedSlots() + "/" + ts.slotCount());
        }
        trace.add(pos, nanos, used, s.bytesPromoted() - up, s.bytesDemoted() - down, s.waitNanosWall() - wait);
        up = s.bytesPromoted();
        down = s.bytesDemoted();
        wait = s.waitNanosWall();
        if (bar != null) {
            bar.update(done, total, detail.toString());
        }
    }

    /** Ends the progress bar's line. */
    void finish() {
        if (bar != null) {
            bar.finish();
        }
    }
}
