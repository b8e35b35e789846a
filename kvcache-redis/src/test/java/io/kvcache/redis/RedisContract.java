package io.kvcache.redis;

import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.PersistentTierContractTest;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierSpec;
import java.lang.foreign.ValueLayout;

/**
 * The tier contracts against a real Redis, standalone or cluster: "reopen" is a new tier on the
 * same namespace, and stored bytes are damaged both in the local slot and in Redis.
 */
abstract class RedisContract extends PersistentTierContractTest {
    private int opened;
    private String namespace;
    private KvLayout lastLayout;
    private long lastCapacity;

    /** @return a configuration for the server under test */
    abstract RedisTierConfig.Builder config(String namespace);

    /** Reads a raw value behind the tier's back. */
    abstract byte[] rawGet(byte[] key);

    /** Writes a raw value behind the tier's back. */
    abstract void rawSet(byte[] key, byte[] value);

    @Override
    protected TierSpec spec() {
        return new TierSpec(false, true, false, false);
    }

    @Override
    protected Tier createTier(KvLayout layout, long capacityBytes) {
        namespace = "contract-" + System.nanoTime() + "-" + opened++;
        lastLayout = layout;
        lastCapacity = capacityBytes;
        return open();
    }

    private RedisTier open() {
        return RedisTier.builder(lastLayout).config(config(namespace).build()).modelId("contract")
                .capacityBytes(lastCapacity).open();
    }

    @Override
    protected PersistentTier reopenStorage() {
        return open();
    }

    @Override
    protected void corruptStoredBytes(PersistentTier tier, int slot) {
        RedisTier t = (RedisTier) tier;
        var mem = t.slotMemory(slot);
        mem.set(ValueLayout.JAVA_BYTE, 100, (byte) ~mem.get(ValueLayout.JAVA_BYTE, 100));
        // the copy in Redis too: a tier that re-fetched would otherwise find good bytes
        var key = t.keyOfSlotForTest(slot);
        if (key != null) {
            byte[] rk = t.redisKey(key);
            byte[] v = rawGet(rk);
            if (v != null) {
                int at = v.length - 10;
                v[at] = (byte) ~v[at];
                rawSet(rk, v);
            }
        }
    }
}
