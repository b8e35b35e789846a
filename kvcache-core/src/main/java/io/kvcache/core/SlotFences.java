package io.kvcache.core;

import io.kvcache.core.tier.Tier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One fence per slot of every tier: a future that completes when no copy reads or writes the
 * slot any more, so that it may be overwritten, written through a handle, or returned to its
 * tier. A copy that uses a slot {@link #addUse adds} its settlement to the slot's fence; a slot
 * is {@link #release released} to its tier only once its fence has completed.
 */
@GuardedBy("manager lock")
final class SlotFences {
    private final Tier[] tiers;
    private final ReentrantLock lock;
    private final CompletableFuture<?>[][] fence;
    /** Releases waiting for a fence; each completes once its slot is back in its tier. */
    private final Set<CompletableFuture<Void>> deferred = new HashSet<>();
    /** Set once the tiers are closed: late releases then leave them alone. */
    private boolean tiersClosed;

    SlotFences(Tier[] tiers, ReentrantLock lock) {
        this.tiers = tiers;
        this.lock = lock;
        this.fence = new CompletableFuture<?>[tiers.length][];
        for (int t = 0; t < tiers.length; t++) {
            fence[t] = new CompletableFuture<?>[tiers[t].slotCount()];
            Arrays.fill(fence[t], Block.DONE);
        }
    }

    /** Packs (tier, slot) into one key, for maps of slots. */
    static long key(int tier, int slot) {
        return ((long) tier << 32) | slot;
    }

    static CompletableFuture<?> combine(CompletableFuture<?> a, CompletableFuture<?> b) {
        return a.isDone() ? b : CompletableFuture.allOf(a, b);
    }

    /** @return completes when every use of the slot registered so far has settled */
    CompletableFuture<?> get(int tier, int slot) {
        return fence[tier][slot];
    }

    /** Restores a fence (a transaction's undo). */
    void set(int tier, int slot, CompletableFuture<?> f) {
        fence[tier][slot] = f;
    }

    /** Registers a use of the slot that ends when {@code settled} completes. */
    void addUse(int tier, int slot, CompletableFuture<?> settled) {
        fence[tier][slot] = combine(fence[tier][slot], settled);
    }

    /**
     * Returns a slot to its tier once every copy into or out of it has settled: a slot with a
     * copy still queued into it stays allocated until then, so the copy never finds it freed
     * (or, worse, handed to another block).
     */
    void release(int t, int slot) {
        CompletableFuture<?> busy = fence[t][slot];
        if (busy.isDone()) {
            tiers[t].free(slot);
            return;
        }
        CompletableFuture<Void> freed = new CompletableFuture<>();
        deferred.add(freed);
        busy.whenComplete((v, e) -> {
            lock.lock();
            try {
                if (!tiersClosed) {
                    tiers[t].free(slot);
                }
                deferred.remove(freed);
            } finally {
                lock.unlock();
            }
            freed.complete(null);
        });
    }

    /** Frees a slot whose own copy has just settled (a promotion's source), unless the tiers are closed. */
    void freeNow(int t, int slot) {
        if (!tiersClosed) {
            tiers[t].free(slot);
        }
    }

    /** @return the releases still waiting for their fences */
    List<CompletableFuture<?>> pendingReleases() {
        return new ArrayList<>(deferred);
    }

    /** @return every fence, for a close that waits for all of them */
    List<CompletableFuture<?>> all() {
        List<CompletableFuture<?>> out = new ArrayList<>();
        for (CompletableFuture<?>[] fs : fence) {
            out.addAll(Arrays.asList(fs));
        }
        return out;
    }

    void markTiersClosed() {
        tiersClosed = true;
    }

    boolean tiersClosed() {
        return tiersClosed;
    }
}
