package io.kvcache.core.tier;

import io.kvcache.core.KvCacheException;

/**
 * A tier could not store or serve one block's bytes: its checksum did not verify, or the
 * storage under it failed (an I/O error, a file truncated underneath). The tier has already
 * quarantined the slot and counted the event; the caller treats the block as a miss (recompute
 * it) and frees the slot as usual. The tier itself keeps working.
 */
public class BlockUnavailableException extends KvCacheException {
    private final int slot;

    public BlockUnavailableException(String message, int slot) {
        super(message);
        this.slot = slot;
    }

    public BlockUnavailableException(String message, int slot, Throwable cause) {
        super(message, cause);
        this.slot = slot;
    }

    /** @return the slot whose bytes are unavailable */
    public int slot() {
        return slot;
    }
}
