package io.kvcache.core;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Objects;

/**
 * Streams a range of a sequence's blocks through the top tier one layer at a time, in windows
 * that fit it, so that attending over a context larger than the top tier is a loop:
 *
 * <pre>{@code
 * try (LayerWindows windows = cache.layerWindows(seq, 0, fullBlocks)) {
 *     for (int layer = 0; layer < layers; layer++) {
 *         for (ResidencyHandle w : windows.layer(layer)) {
 *             fold(w, layer);          // layer `layer` of blocks [w.fromBlock(), w.fromBlock() + w.blockCount())
 *         }
 *     }
 * }
 * }</pre>
 *
 * <p>Each window is a handle of one layer ({@link KvCacheManager#ensureResident(Sequence, int, int,
 * int, int)}) over at most {@link #windowBlocks()} consecutive blocks, handed out once that layer
 * is in place and closed when the next is taken (or the layer's loop ends). When a window is
 * handed out, the next {@link Options#aheadWindows()} (default one) are already asked for: the
 * next windows of the layer or, after a layer's last window, the next layer's first, so that
 * their copies run while the engine folds.
 * Blocks visit in ascending order whatever the budget, so any budget gives the same floats.
 *
 * <p>Only the layer slices a window lacks move: a sealed block held below gets a partial top-tier
 * slot, and blocks already in the top tier move nothing, so over a step each block's bytes move
 * toward the top tier at most once ({@code docs/residency-protocol.md}, "Layer ranges").
 *
 * <p>By default the window asked for ahead takes only free and partial slots, never evicting a
 * block held whole in the top tier (a block that stays there across steps moves no bytes at
 * all); {@link Options#prefetchEvicts()} lets it evict like any request, which overlaps more
 * copies with compute at the price of up to {@code windowBlocks} more blocks moved per step.
 *
 * <p>Not thread-safe: one engine thread iterates. The handles belong to this object: do not close
 * them; {@link #close()} releases whatever is still pinned.
 */
public final class LayerWindows implements AutoCloseable {
    /**
     * How windows are sized and asked for ahead.
     *
     * @param windowBlocks   blocks per window, at least 1; the window in use, the windows asked
     *                       for ahead and the blocks other handles pin must fit the top tier
     * @param prefetchEvicts whether a window asked for ahead may evict blocks held whole in the
     *                       top tier (else it takes only free and partial slots, and is left to be
     *                       asked for when reached if those do not suffice)
     * @param aheadWindows   windows asked for ahead of the one in use, at least 1: more keep a
     *                       copy engine busier while windows are folded, at the price of up to
     *                       {@code aheadWindows * windowBlocks} blocks moved more per step when
     *                       they may evict
     */
    public record Options(int windowBlocks, boolean prefetchEvicts, int aheadWindows) {
        public Options {
            if (windowBlocks < 1) {
                throw new IllegalArgumentException("a window needs at least one block, was " + windowBlocks);
            }
            if (aheadWindows < 1) {
                throw new IllegalArgumentException("at least one window is asked for ahead, was " + aheadWindows);
            }
        }

        /** One window asked for ahead. */
        public Options(int windowBlocks, boolean prefetchEvicts) {
            this(windowBlocks, prefetchEvicts, 1);
        }

        /**
         * @param topSlots slots of the top tier
         * @return a window of a sixteenth of the top tier (at least 1 block), one window ahead
         *     that takes only free and partial slots
         */
        public static Options forTopTier(int topSlots) {
            return new Options(Math.max(1, (topSlots - 1) / 16), false, 1);
        }
    }

    /** A window asked for ahead of use: null handle when it found no room then. */
    private record Ahead(int layer, int from, int to, ResidencyHandle handle) {
    }

    private final KvCacheManager cache;
    private final Sequence seq;
    private final int fromBlock;
    private final int toBlock;
    private final int layers;
    private final Options options;
    private ResidencyHandle current;
    /** Windows asked for ahead, in the order they will be reached. */
    private final java.util.ArrayDeque<Ahead> ahead = new java.util.ArrayDeque<>();
    private boolean closed;

    LayerWindows(KvCacheManager cache, Sequence seq, int fromBlock, int toBlock, Options options) {
        this.cache = cache;
        this.seq = seq;
        this.fromBlock = fromBlock;
        this.toBlock = toBlock;
        this.layers = cache.layout().layers();
        this.options = options;
    }

    /** @return blocks per window */
    public int windowBlocks() {
        return options.windowBlocks();
    }

    /** @return the options in use */
    public Options options() {
        return options;
    }

    /**
     * The windows of one layer, in ascending block order. Starting the loop releases a window
     * still pinned from an earlier loop; each {@code next()} releases the previous window, asks for
     * those ahead of it, and returns its window once the layer is in place.
     *
     * @param layer a layer of the layout
     * @return the windows; iterate once
     * @throws IllegalArgumentException if the layer is outside the layout
     * @throws IllegalStateException    after {@link #close()}
     */
    public Iterable<ResidencyHandle> layer(int layer) {
        if (layer < 0 || layer >= layers) {
            throw new IllegalArgumentException("layer " + layer + " outside the layout's " + layers + " layers");
        }
        checkOpen();
        return () -> new Iterator<>() {
            private int pos = fromBlock;

            {
                closeCurrent();
            }

            @Override
            public boolean hasNext() {
                if (pos < toBlock && !closed) {
                    return true;
                }
                closeCurrent();
                return false;
            }

            @Override
            public ResidencyHandle next() {
                if (!hasNext()) {
                    throw new NoSuchElementException("no window of layer " + layer + " after block " + pos);
                }
                closeCurrent();
                int a = pos;
                int b = Math.min(a + options.windowBlocks(), toBlock);
                Ahead next = ahead.peekFirst();
                if (next != null && next.layer() == layer && next.from() == a && next.to() == b) {
                    ahead.removeFirst();
                    current = next.handle();
                } else {
                    closeAhead();
                }
                if (current == null) {
                    current = cache.ensureResident(seq, a, b, layer, layer + 1);
                }
                pos = b;
                askAhead(layer, b);
                current.awaitLayer(layer);
                return current;
            }
        };
    }

    /**
     * Keeps {@code aheadWindows} windows asked for beyond the one ending at block {@code end} of
     * {@code layer}: the rest of the layer, then the next layer's first windows. One that finds no
     * room (or a lost block) is left to be asked for when reached.
     */
    private void askAhead(int layer, int end) {
        int l = layer;
        int from = end;
        Ahead last = ahead.peekLast();
        if (last != null) {
            l = last.layer();
            from = last.to();
        }
        while (ahead.size() < options.aheadWindows()) {
            if (from >= toBlock) {
                if (l + 1 >= layers || fromBlock >= toBlock) {
                    return;
                }
                l++;
                from = fromBlock;
            }
            int to = Math.min(from + options.windowBlocks(), toBlock);
            ResidencyHandle h;
            try {
                h = cache.ensureLayers(seq, from, to, l, l + 1, options.prefetchEvicts());
            } catch (OutOfCacheSpaceException | BlockLostException e) {
                h = null;
            }
            ahead.addLast(new Ahead(l, from, to, h));
            from = to;
        }
    }

    private void closeCurrent() {
        if (current != null) {
            ResidencyHandle h = current;
            current = null;
            h.close();
        }
    }

    private void closeAhead() {
        while (!ahead.isEmpty()) {
            ResidencyHandle h = ahead.removeFirst().handle();
            if (h != null) {
                h.close();
            }
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("these layer windows are closed");
        }
    }

    /** Releases the windows still pinned. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            closeCurrent();
        } finally {
            closeAhead();
        }
    }

    @Override
    public String toString() {
        return "LayerWindows[" + seq + " blocks [" + fromBlock + ", " + toBlock + "), " + options + "]";
    }

    static LayerWindows open(KvCacheManager cache, Sequence seq, int fromBlock, int toBlock, Options options) {
        Objects.requireNonNull(options, "options");
        return new LayerWindows(cache, seq, fromBlock, toBlock, options);
    }
}
