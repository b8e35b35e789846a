package io.kvcache.core;

import io.kvcache.core.block.BlockKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One token stream whose KV lives in the cache: a prompt and the tokens generated after it.
 * Logical block {@code i} holds positions {@code [i * blockTokens, (i + 1) * blockTokens)}.
 *
 * <p>Obtained from {@link KvCacheManager#open}. Thread safety: all methods lock the manager;
 * a sequence may be used from any thread, but an engine normally drives each from one.
 */
public final class Sequence implements AutoCloseable {
    final KvCacheManager manager;
    final long id;
    final byte[] salt;
    int[] tokens;
    int length;
    int written;
    int cachedTokens;
    final List<Block> blocks = new ArrayList<>();
    /** Chained content keys of full blocks, computed from the tokens; index = logical block. */
    final List<BlockKey> chainKeys = new ArrayList<>();
    boolean closed;

    Sequence(KvCacheManager manager, long id, byte[] salt, int capacityHint) {
        this.manager = manager;
        this.id = id;
        this.salt = salt;
        this.tokens = new int[Math.max(16, capacityHint)];
    }

    /** @return this sequence's id, unique within its manager */
    public long id() {
        return id;
    }

    /** @return tokens in the sequence */
    public int length() {
        return manager.locked(() -> length);
    }

    /** @return leading prompt tokens whose KV was found in the cache at open; the engine skips their prefill */
    public int cachedTokens() {
        return manager.locked(() -> cachedTokens);
    }

    /** @return tokens whose KV is written (see {@link #markWritten}) */
    public int writtenTokens() {
        return manager.locked(() -> written);
    }

    /** @return logical blocks, {@code ceil(length / blockTokens)} */
    public int blockCount() {
        return manager.locked(blocks::size);
    }

    /** @return a copy of the token ids */
    public int[] tokens() {
        return manager.locked(() -> Arrays.copyOf(tokens, length));
    }

    /** @return whether {@link #close} has not been called */
    public boolean isOpen() {
        return manager.locked(() -> !closed);
    }

    /**
     * Appends tokens. Their KV must then be written (through a {@link ResidencyHandle}) and
     * declared with {@link #markWritten}. Appending to a partial block shared with a fork
     * copies it first (copy-on-write).
     *
     * @throws InvalidHandleException if the sequence is closed
     */
    public void append(int... newTokens) {
        manager.append(this, newTokens);
    }

    /**
     * Declares the KV of tokens {@code [0, upTo)} written. Blocks that are now full and written
     * are sealed under their content key and become shareable with other sequences.
     *
     * @throws PositionOutOfRangeException if upTo is negative or past {@link #length()}
     */
    public void markWritten(int upTo) {
        manager.markWritten(this, upTo);
    }

    /**
     * @return a new sequence with the same tokens, sharing every written block (a partial last
     *     block is copied on the first append to it; blocks with KV still unwritten are copied
     *     for the fork at once, since each sequence writes them)
     * @throws InvalidHandleException if the sequence is closed
     */
    public Sequence fork() {
        return manager.fork(this);
    }

    /**
     * Shortens the sequence to {@code newLength} tokens, releasing blocks past it.
     *
     * @throws PositionOutOfRangeException if newLength is negative or past {@link #length()}
     */
    public void truncate(int newLength) {
        manager.truncate(this, newLength);
    }

    /** Releases the sequence's block references. Idempotent. */
    @Override
    public void close() {
        manager.closeSequence(this);
    }

    @Override
    public String toString() {
        return "Sequence[" + id + "]";
    }
}
