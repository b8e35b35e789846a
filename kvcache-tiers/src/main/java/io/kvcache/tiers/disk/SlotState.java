package io.kvcache.tiers.disk;

/**
 * The state of one slot of the disk tier in memory. {@link SlotTable} keeps one per slot and
 * changes it only through its transition methods; {@code docs/disk-format.md} ("Slot states")
 * lists the transitions and maps each state onto the slot header's two on-disk states.
 *
 * <pre>
 * from             transition           to                called by
 * FREE             takeFree             OWNED             allocate
 * OWNED            release              FREE              free
 * OWNED            publish              OWNED_PUBLISHED   publish
 * OWNED_PUBLISHED  unpublishHeld        OWNED             write, unpublish, quarantine
 * OWNED_PUBLISHED  release              RETAINED          free
 * RETAINED         takeRetained         OWNED_PUBLISHED   lookup
 * RETAINED         dropRetainedToFree   FREE              allocate (eviction), publish (older copy),
 *                                                         unpublish, quarantine
 * OWNED_RETIRED    release              RETIRED           free
 * FREE, RETAINED   retire               RETIRED           an I/O error, the file truncated
 * OWNED, OWNED_PUBLISHED  retire        OWNED_RETIRED     an I/O error, the file truncated
 * at open only:    FREE → RETAINED (recover), RETAINED → FREE (dropDuplicateAtOpen), FREE → RETIRED (retire)
 * </pre>
 */
enum SlotState {
    /** Neither held nor published: on the free stack. On disk: a free header (or none written). */
    FREE,
    /** Held by a caller, not published. On disk: a free header. */
    OWNED,
    /** Held by a caller and published under a key. On disk: a published header and an index entry. */
    OWNED_PUBLISHED,
    /**
     * Published and held by nobody: in the retained lists, counted as free, dropped when the
     * room is needed. On disk: a published header and an index entry.
     */
    RETAINED,
    /**
     * Out of use until the tier is reopened (an I/O error, the file truncated, the disk too full
     * to reserve it). On disk: a free header when the block was published and clearing it
     * succeeded; otherwise whatever a later open finds and checks.
     */
    RETIRED,
    /** Retired while a caller held it: reads and writes fail; it becomes {@link #RETIRED} when freed. */
    OWNED_RETIRED;

    private static final SlotState[] BY_CODE = values();

    /** @return the byte {@link SlotTable} stores for this state */
    byte code() {
        return (byte) ordinal();
    }

    static SlotState of(byte code) {
        return BY_CODE[code];
    }

    /** @return whether a caller holds the slot (it was allocated or looked up and not freed) */
    boolean held() {
        return this == OWNED || this == OWNED_PUBLISHED || this == OWNED_RETIRED;
    }

    /** @return whether the slot's block is published: its header and index entry name it */
    boolean published() {
        return this == OWNED_PUBLISHED || this == RETAINED;
    }

    /** @return whether the slot is out of use */
    boolean retired() {
        return this == RETIRED || this == OWNED_RETIRED;
    }
}
