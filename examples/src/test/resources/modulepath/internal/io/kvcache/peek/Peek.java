package io.kvcache.peek;

public final class Peek {
    static final Class<?> SLOTS = io.kvcache.tiers.slots.GuardedSlots.class;
}
