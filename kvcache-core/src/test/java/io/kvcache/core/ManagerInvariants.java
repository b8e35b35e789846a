package io.kvcache.core;

import java.util.HashMap;
import java.util.Map;

/**
 * Reads the manager's internals and checks what must hold after every action, whatever the
 * copies in flight are doing: reference counts equal the references of open sequences,
 * copy-on-write reader counts equal the blocks copying, the content index points at its
 * blocks, and no two blocks claim one slot (as residency or lower copy).
 */
final class ManagerInvariants {
    private ManagerInvariants() {
    }

    /** @return null when every invariant holds, else what broke */
    static String check(KvCacheManager m) {
        return m.locked(() -> {
            BlockRegistry registry = m.registry();
            Map<Long, Integer> refs = new HashMap<>();
            for (Sequence s : m.sequenceTable().all()) {
                if (s.blocks.size() != (s.length + m.layout().blockTokens() - 1) / m.layout().blockTokens()) {
                    return s + " has " + s.blocks.size() + " blocks for " + s.length + " tokens";
                }
                if (s.written > s.length || s.cachedTokens > s.length) {
                    return s + " has written " + s.written + " / cached " + s.cachedTokens + " of " + s.length;
                }
                for (Block b : s.blocks) {
                    if (!b.registered) {
                        return s + " holds block " + b.id + ", which is not registered";
                    }
                    refs.merge(b.id, 1, Integer::sum);
                }
            }
            Map<Long, Integer> readers = new HashMap<>();
            Map<Long, Long> owner = new HashMap<>();
            for (Block b : registry.all()) {
                if (b.refCount != refs.getOrDefault(b.id, 0)) {
                    return "block " + b.id + " counts " + b.refCount + " references but sequences hold "
                            + refs.getOrDefault(b.id, 0);
                }
                if (b.pins < 0 || b.cowReaders < 0) {
                    return "block " + b.id + " has " + b.pins + " pins and " + b.cowReaders + " readers";
                }
                if (b.cowFrom != null) {
                    if (!b.cowFrom.registered) {
                        return "block " + b.id + " copies from block " + b.cowFrom.id + ", which was freed";
                    }
                    if (b.hasSlot()) {
                        return "block " + b.id + " has a slot and still a copy-on-write source";
                    }
                    readers.merge(b.cowFrom.id, 1, Integer::sum);
                }
                if (b.key != null && !b.lost && registry.sealed(b.key) != b) {
                    return "sealed block " + b.id + " is not the one its key finds";
                }
                if (b.hasSlot()) {
                    Long prev = owner.put(SlotFences.key(b.tier, b.slot), b.id);
                    if (prev != null) {
                        return "blocks " + prev + " and " + b.id + " both live in tier " + b.tier + " slot " + b.slot;
                    }
                }
                if (b.hasLowerCopy()) {
                    if (b.lowerTier <= b.tier) {
                        return "block " + b.id + " in tier " + b.tier + " keeps a lower copy in tier " + b.lowerTier;
                    }
                    Long prev = owner.put(SlotFences.key(b.lowerTier, b.lowerSlot), b.id);
                    if (prev != null) {
                        return "blocks " + prev + " and " + b.id + " both claim tier " + b.lowerTier + " slot "
                                + b.lowerSlot;
                    }
                }
                if (b.hasPartialSlot()) {
                    if (b.tier <= 0 || b.key == null) {
                        return "block " + b.id + " in tier " + b.tier + (b.key == null ? ", not sealed," : "")
                                + " has a partial top-tier slot";
                    }
                    Long prev = owner.put(SlotFences.key(0, b.partialSlot), b.id);
                    if (prev != null) {
                        return "blocks " + prev + " and " + b.id + " both claim top-tier slot " + b.partialSlot;
                    }
                }
                if (b.refCount == 0 && b.pins == 0 && b.cowReaders == 0 && (b.key == null || b.lost)) {
                    return "block " + b.id + " is held by nobody and should have been freed";
                }
            }
            for (Block b : m.partialSlots().blocks()) {
                if (!b.registered || !b.hasPartialSlot()) {
                    return "block " + b.id + " is listed with a partial slot but " + (b.registered ? "has none" : "was freed");
                }
            }
            for (Block b : registry.all()) {
                if (b.cowReaders != readers.getOrDefault(b.id, 0)) {
                    return "block " + b.id + " counts " + b.cowReaders + " copy-on-write readers but "
                            + readers.getOrDefault(b.id, 0) + " blocks copy from it";
                }
            }
            return null;
        });
    }
}
