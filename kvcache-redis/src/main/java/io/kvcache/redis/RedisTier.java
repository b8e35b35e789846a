package io.kvcache.redis;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.stats.CacheStats;
import io.kvcache.core.block.BlockKey;
import io.kvcache.core.layout.KvLayout;
import io.kvcache.core.tier.BlockUnavailableException;
import io.kvcache.core.tier.PersistentTier;
import io.kvcache.core.tier.Tier;
import io.kvcache.core.tier.TierCapacity;
import io.kvcache.core.tier.TierKind;
import io.lettuce.core.KeyValue;
import io.lettuce.core.RedisFuture;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A persistent tier in Redis, shared by every process (on any host) that points at the same
 * server or cluster and namespace: one process's sealed blocks are found by the others.
 *
 * <p>Each block is one Redis string under {@code namespace:hex(content address)}; the content
 * address already hashes the tenant salt, model, layout and parent, so two tenants never share.
 * The value is a {@link BlockValue} header (magic, version, layout fingerprint, model, key,
 * length, CRC32C) then the bytes; a value that fails any check is a counted miss, deleted, never
 * served. Expiry and eviction are Redis's ({@code maxmemory-policy}): a vanished key is a miss.
 *
 * <p>The tier's slots stage blocks between the manager and Redis, each in a heap array laid out
 * as its value (header room, then the bytes), so that nothing is copied but into and out of the
 * slot: {@link #publish} fills in the header and sends the array with a {@code SET} it does not
 * wait for (consecutive publishes are pipelined on one connection: a batch is one round trip),
 * {@link #lookup} keeps the array Redis returned, after checking its header, and
 * {@link #prefetch} fetches a whole prefix chain with one {@code MGET}. The payload's CRC32C is
 * checked by {@link #verify} and by every {@link #read}, before any byte is served, as the disk
 * tier does. A freed published slot is retained with its bytes until its room is needed, so a
 * hot block costs no round trip; presence and absence answers are remembered in a Caffeine cache
 * for {@link RedisTierConfig#presenceTtl()}.
 *
 * <p>Failures are misses, not hangs: every command is bounded by {@link RedisTierConfig#timeout()};
 * a lost connection makes the tier {@linkplain #degraded() degraded} (commands are not sent, every
 * lookup misses at once) while Lettuce reconnects in the background; the tier never reports
 * {@link #failed()}, so the manager keeps using it once the server is back.
 *
 * <p>Thread safety: metadata is guarded by an internal lock, never held across a round trip;
 * {@link #read} and {@link #write} copy outside it, on distinct slots.
 */
public final class RedisTier implements PersistentTier {
    private static final System.Logger LOG = System.getLogger(RedisTier.class.getName());

    private final String name;
    private final KvLayout layout;
    private final String modelId;
    private final long slotBytes;
    private final RedisTierConfig config;
    private final byte[] keyPrefix;
    private final BlockValue format;
    private final StagingSlots slots;
    /**
     * Per slot, the value it stages: header room, then the block's bytes, so that a publish sends
     * it as it is and a lookup keeps what Redis returned, without copying. Null: never written.
     */
    private final byte[][] values;
    /** Per slot, whether its value was handed to Lettuce (a write then copies it first). */
    private final boolean[] sent;
    /** Per slot, whether its bytes failed their checksum: never served until written anew. */
    private final boolean[] bad;
    private final RedisStore store;
    /** Recent presence (true) and absence (false) answers. */
    private final Cache<BlockKey, Boolean> presence;
    /** Values fetched by the last {@link #prefetch}, checked, waiting for their lookup. */
    private final Map<BlockKey, byte[]> prefetched = new HashMap<>();
    /** Writes and deletes in flight, each completing after its own bookkeeping (permit, counters) ran. */
    private final Set<CompletableFuture<?>> pending = ConcurrentHashMap.newKeySet();
    private final Semaphore writePermits;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile boolean closed;

    private final AtomicLong lookups = new AtomicLong();
    private final AtomicLong localHits = new AtomicLong();
    private final AtomicLong remoteHits = new AtomicLong();
    private final AtomicLong misses = new AtomicLong();
    private final AtomicLong publishes = new AtomicLong();
    private final AtomicLong publishFailures = new AtomicLong();
    private final AtomicLong publishesSkipped = new AtomicLong();
    private final AtomicLong invalidValues = new AtomicLong();
    private final AtomicLong checksumFailures = new AtomicLong();
    private final AtomicLong prefetches = new AtomicLong();
    private final AtomicLong prefetchedBlocks = new AtomicLong();

    private RedisTier(Builder b) {
        this.layout = b.layout;
        this.name = b.name;
        this.modelId = b.modelId;
        this.config = b.config;
        this.slotBytes = layout.blockBytes();
        int count = TierCapacity.slots(name, b.capacityBytes, slotBytes);
        this.keyPrefix = (config.namespace() + ":").getBytes(StandardCharsets.UTF_8);
        this.format = new BlockValue(layout.fingerprint(), modelId, slotBytes);
        this.presence = Caffeine.newBuilder().expireAfterWrite(config.presenceTtl())
                .maximumSize(config.presenceMaxEntries()).recordStats().build();
        this.writePermits = new Semaphore(config.maxPendingWrites());
        this.slots = new StagingSlots(count);
        this.values = new byte[count][];
        this.sent = new boolean[count];
        this.bad = new boolean[count];
        this.store = new RedisStore(config);
    }

    /** @return a builder for a Redis tier of blocks of {@code layout} */
    public static Builder builder(KvLayout layout) {
        return new Builder(layout);
    }

    /** Configures and opens a {@link RedisTier}. */
    public static final class Builder {
        private final KvLayout layout;
        private RedisTierConfig config;
        private long capacityBytes;
        private String modelId;
        private String name = "redis";

        private Builder(KvLayout layout) {
            this.layout = Objects.requireNonNull(layout, "layout");
        }

        /** Where and how to reach Redis (required). */
        public Builder config(RedisTierConfig config) {
            this.config = Objects.requireNonNull(config, "config");
            return this;
        }

        /**
         * Local staging memory in bytes, whole blocks (required; Java heap): how many blocks can be
         * in flight between the manager and Redis, and kept locally for repeated lookups. Redis's own
         * capacity is its {@code maxmemory}.
         */
        public Builder capacityBytes(long bytes) {
            this.capacityBytes = bytes;
            return this;
        }

        /** The model whose KV this tier holds (required): a value of another model is a miss. */
        public Builder modelId(String modelId) {
            this.modelId = Objects.requireNonNull(modelId, "modelId");
            return this;
        }

        /** Tier name in stats and logs (default "redis"). */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /**
         * Connects.
         *
         * @throws IllegalArgumentException when something required is missing or the capacity holds no block
         * @throws RedisTierUnavailableException when Redis cannot be reached or refuses the credentials
         */
        public RedisTier open() {
            if (config == null) {
                throw new IllegalArgumentException("redis tier '" + name + "': no RedisTierConfig given");
            }
            if (modelId == null) {
                throw new IllegalArgumentException("redis tier '" + name + "': no model id given");
            }
            TierCapacity.slots(name, capacityBytes, layout.blockBytes());
            return new RedisTier(this);
        }
    }

    // ------------------------------------------------------------------ Tier

    @Override
    public String name() {
        return name;
    }

    @Override
    public TierKind kind() {
        return TierKind.REMOTE;
    }

    @Override
    public long slotBytes() {
        return slotBytes;
    }

    @Override
    public int slotCount() {
        return slots.count();
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public String modelId() {
        return modelId;
    }

    @Override
    public int freeSlots() {
        lock.lock();
        try {
            return slots.available();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public int allocate() {
        lock.lock();
        try {
            checkOpen();
            return takeLocked();
        } finally {
            lock.unlock();
        }
    }

    /** Takes a slot with no value (its bytes read as zeros until written). */
    private int takeLocked() {
        int s = slots.take();
        if (s >= 0) {
            values[s] = null;
            sent[s] = false;
            bad[s] = false;
        }
        return s;
    }

    /** Takes a free slot; when none is free, the oldest retained local copy gives its slot up (the block stays in Redis). */
    @Override
    public int allocate(BlockKey key) {
        return allocate();
    }

    /** Releases a held slot; one holding a published block keeps its bytes until the room is needed. */
    @Override
    public void free(int slot) {
        Tier.checkSlot(this, slot);
        lock.lock();
        try {
            checkOpen();
            if (!slots.held(slot)) {
                throw new IllegalStateException("slot " + slot + " of tier '" + name + "' is not allocated");
            }
            slots.release(slot);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public boolean hostAccessible() {
        return false;
    }

    /** @throws UnsupportedOperationException always: reads go through {@link #read}, which verifies */
    @Override
    public MemorySegment view(int slot) {
        throw new UnsupportedOperationException("tier '" + name + "' is not host accessible: use read/write, "
                + "which verify checksums");
    }

    @Override
    public long address(int slot) {
        Tier.checkSlot(this, slot);
        return slot * slotBytes;
    }

    /** Copies bytes into a held slot; writing a published slot unpublishes its block first. */
    @Override
    public void write(int slot, long offset, MemorySegment src) {
        Tier.checkSlot(this, slot);
        Tier.checkRange(this, offset, src.byteSize());
        boolean whole = offset == 0 && src.byteSize() == slotBytes;
        int sum = whole ? BlockValue.crc(src) : 0;
        byte[] v;
        lock.lock();
        try {
            checkOpen();
            if (!slots.held(slot)) {
                throw new IllegalStateException("slot " + slot + " of tier '" + name + "' is not allocated");
            }
            if (slots.key(slot) != null) {
                unpublishLocked(slot);
            }
            slots.forgetCrc(slot);
            bad[slot] = bad[slot] && !whole;
            v = values[slot];
            if (v == null || sent[slot]) {
                byte[] fresh = format.newValue();
                if (v != null && !whole) {
                    System.arraycopy(v, format.payloadOffset(), fresh, format.payloadOffset(), (int) slotBytes);
                }
                v = fresh;
                values[slot] = v;
                sent[slot] = false;
            }
        } finally {
            lock.unlock();
        }
        MemorySegment.copy(src, 0, MemorySegment.ofArray(v), format.payloadOffset() + offset, src.byteSize());
        if (whole) {
            lock.lock();
            try {
                slots.recordCrc(slot, sum);
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Copies bytes out of a slot, verifying the block's CRC32C when known.
     *
     * @throws BlockUnavailableException when the bytes fail their checksum (the block is unpublished
     *                                   here and in Redis); {@code dst} is then zeroed
     */
    @Override
    public void read(int slot, long offset, MemorySegment dst) {
        Tier.checkSlot(this, slot);
        Tier.checkRange(this, offset, dst.byteSize());
        boolean known;
        int expected;
        byte[] v;
        lock.lock();
        try {
            checkOpen();
            known = slots.crcKnown(slot);
            expected = slots.crc(slot);
            v = values[slot];
            if (bad[slot]) {
                dst.fill((byte) 0);
                throw new BlockUnavailableException("block in slot " + slot + " of tier '" + name
                        + "' failed its CRC32C check earlier: treat it as a miss", slot);
            }
        } finally {
            lock.unlock();
        }
        if (v == null) {
            dst.fill((byte) 0);
            return;
        }
        MemorySegment.copy(MemorySegment.ofArray(v), format.payloadOffset() + offset, dst, 0, dst.byteSize());
        if (!known) {
            return;
        }
        int actual = offset == 0 && dst.byteSize() == slotBytes ? BlockValue.crc(dst)
                : format.crcOfPayload(v, 0, slotBytes);
        if (actual != expected) {
            dst.fill((byte) 0);
            quarantine(slot, expected);
            throw new BlockUnavailableException("block in slot " + slot + " of tier '" + name
                    + "' failed its CRC32C check: unpublished, treat it as a miss", slot);
        }
    }

    @Override
    public String backing() {
        return "redis" + (config.cluster() ? " cluster " : " ") + config.where() + (config.tls() ? " (TLS)" : "");
    }

    /** @return false: a lost connection degrades the tier ({@link #degraded()}), it never fails it */
    @Override
    public boolean failed() {
        return false;
    }

    // ------------------------------------------------------------------ PersistentTier

    /**
     * Finds a block: in a retained local slot (no round trip), among the values of the last
     * {@link #prefetch}, or with one {@code GET}. The value's header is checked before it is
     * placed in a slot (one that fails is deleted and counted, and the lookup misses); its bytes
     * are checked against their CRC32C by {@link #verify} and {@link #read}.
     *
     * @return the slot, or -1 when absent, held already, invalid, no slot is free, or Redis is unreachable
     */
    @Override
    public int lookup(BlockKey key) {
        Objects.requireNonNull(key, "key");
        lookups.incrementAndGet();
        int slot;
        byte[] value;
        lock.lock();
        try {
            checkOpen();
            int local = slots.slotOf(key);
            if (local >= 0) {
                if (slots.held(local)) {
                    return -1;
                }
                slots.takeRetained(local);
                localHits.incrementAndGet();
                return local;
            }
            value = prefetched.remove(key);
            if (value == null && Boolean.FALSE.equals(presence.getIfPresent(key))) {
                misses.incrementAndGet();
                return -1;
            }
            if (value == null && !store.available()) {
                misses.incrementAndGet();
                return -1;
            }
            slot = takeLocked();
            if (slot < 0) {
                misses.incrementAndGet();
                return -1;
            }
        } finally {
            lock.unlock();
        }
        boolean ok = false;
        try {
            if (value == null) {
                value = store.await(store.get(redisKey(key)), "GET");
                if (value == null) {
                    presence.put(key, Boolean.FALSE);
                    return -1;
                }
                if (!checked(key, value)) {
                    return -1;
                }
            }
            lock.lock();
            try {
                checkOpen();
                if (slots.slotOf(key) >= 0) {
                    return -1; // found meanwhile by another caller
                }
                values[slot] = value;
                sent[slot] = false;
                slots.setKey(slot, key);
                slots.recordCrc(slot, BlockValue.crcOf(value));
                ok = true;
            } finally {
                lock.unlock();
            }
            presence.put(key, Boolean.TRUE);
            remoteHits.incrementAndGet();
            return slot;
        } finally {
            if (!ok) {
                misses.incrementAndGet();
                lock.lock();
                try {
                    if (!closed && slots.held(slot)) {
                        slots.release(slot);
                    }
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    /** @return whether a value passed every check; one that did not is counted, logged and deleted */
    private boolean checked(BlockKey key, byte[] value) {
        BlockValue.Check c = format.checkHeader(key, value);
        if (c.ok()) {
            return true;
        }
        invalidValues.incrementAndGet();
        presence.put(key, Boolean.FALSE);
        LOG.log(System.Logger.Level.WARNING, "redis tier ''{0}'': value of block {1} is invalid ({2}): a miss, deleted",
                name, key, c);
        delete(key);
        return false;
    }

    /**
     * Fetches the values of the keys of a prefix chain with one {@code MGET} (a cluster client sends
     * one per node, in parallel), so that the lookups that follow cost no round trip. Keys held
     * locally or known absent are not asked; no more are fetched than slots are free.
     */
    @Override
    public void prefetch(List<BlockKey> keys) {
        List<BlockKey> ask = new java.util.ArrayList<>();
        lock.lock();
        try {
            checkOpen();
            prefetched.clear();
            if (!store.available()) {
                return;
            }
            int room = slots.available();
            for (BlockKey k : keys) {
                if (ask.size() >= room) {
                    break;
                }
                if (slots.slotOf(k) >= 0) {
                    continue;
                }
                if (Boolean.FALSE.equals(presence.getIfPresent(k))) {
                    break; // a chain stops at its first absent block
                }
                ask.add(k);
            }
        } finally {
            lock.unlock();
        }
        if (ask.isEmpty()) {
            return;
        }
        prefetches.incrementAndGet();
        byte[][] rk = new byte[ask.size()][];
        for (int i = 0; i < rk.length; i++) {
            rk[i] = redisKey(ask.get(i));
        }
        List<KeyValue<byte[], byte[]>> got = store.await(store.mget(rk), "MGET");
        if (got == null) {
            return;
        }
        Map<BlockKey, byte[]> ok = new HashMap<>();
        for (int i = 0; i < got.size() && i < ask.size(); i++) {
            BlockKey k = ask.get(i);
            KeyValue<byte[], byte[]> kv = got.get(i);
            if (!kv.hasValue()) {
                presence.put(k, Boolean.FALSE);
            } else if (checked(k, kv.getValue())) {
                ok.put(k, kv.getValue());
                presence.put(k, Boolean.TRUE);
            }
        }
        lock.lock();
        try {
            if (!closed) {
                prefetched.putAll(ok);
                prefetchedBlocks.addAndGet(ok.size());
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public boolean checksumKnown(int slot) {
        Tier.checkSlot(this, slot);
        lock.lock();
        try {
            return slots.crcKnown(slot);
        } finally {
            lock.unlock();
        }
    }

    /**
     * @return whether the block is here or in Redis: answered locally, from the presence cache, or
     *     with one {@code EXISTS}; false when Redis is unreachable
     */
    @Override
    public boolean contains(BlockKey key) {
        Objects.requireNonNull(key, "key");
        lock.lock();
        try {
            checkOpen();
            if (slots.slotOf(key) >= 0 || prefetched.containsKey(key)) {
                return true;
            }
        } finally {
            lock.unlock();
        }
        Boolean known = presence.getIfPresent(key);
        if (known != null) {
            return known;
        }
        if (!store.available()) {
            return false;
        }
        Long n = store.await(store.exists(redisKey(key)), "EXISTS");
        if (n == null) {
            return false;
        }
        presence.put(key, n > 0);
        return n > 0;
    }

    @Override
    public void publish(int slot, BlockKey key) {
        publish(slot, key, null);
    }

    /**
     * Seals a held slot's bytes under {@code key} and sends them to Redis with a {@code SET} it does
     * not wait for; the block is findable here at once and in Redis once the write lands. When
     * {@link RedisTierConfig#maxPendingWrites()} writes are in flight, or Redis is unreachable, the
     * block is kept locally only (counted as skipped). Idempotent for the same key.
     *
     * @throws IllegalStateException when the slot is not held, or holds another published block
     */
    @Override
    public void publish(int slot, BlockKey key, BlockKey parent) {
        Objects.requireNonNull(key, "key");
        Tier.checkSlot(this, slot);
        if (key.equals(parent)) {
            throw new IllegalArgumentException("block " + key + " cannot be its own parent");
        }
        boolean known;
        int sum;
        byte[] value;
        lock.lock();
        try {
            checkOpen();
            if (!slots.held(slot)) {
                throw new IllegalStateException("slot " + slot + " of tier '" + name + "' is not allocated");
            }
            BlockKey had = slots.key(slot);
            if (key.equals(had)) {
                return;
            }
            if (had != null) {
                throw new IllegalStateException("slot " + slot + " of tier '" + name + "' holds block " + had
                        + ", not " + key);
            }
            if (values[slot] == null || sent[slot]) {
                // never written (zeros), or its array belongs to an earlier write: a value of its own
                byte[] fresh = format.newValue();
                if (values[slot] != null) {
                    System.arraycopy(values[slot], format.payloadOffset(), fresh, format.payloadOffset(),
                            (int) slotBytes);
                }
                values[slot] = fresh;
                sent[slot] = false;
            }
            value = values[slot];
            known = slots.crcKnown(slot);
            sum = slots.crc(slot);
        } finally {
            lock.unlock();
        }
        if (!known) {
            sum = format.crcOfPayload(value, 0, slotBytes);
        }
        format.writeHeader(key, value, sum);
        lock.lock();
        try {
            checkOpen();
            if (!slots.held(slot) || slots.key(slot) != null || values[slot] != value) {
                return;
            }
            slots.setKey(slot, key);
            slots.recordCrc(slot, sum);
            sent[slot] = true;
        } finally {
            lock.unlock();
        }
        presence.put(key, Boolean.TRUE);
        publishes.incrementAndGet();
        send(key, value);
    }

    private void send(BlockKey key, byte[] value) {
        if (!store.available() || !writePermits.tryAcquire()) {
            publishesSkipped.incrementAndGet();
            return;
        }
        RedisFuture<String> f;
        try {
            f = store.set(redisKey(key), value);
        } catch (RuntimeException e) {
            writePermits.release();
            publishFailures.incrementAndGet();
            store.failed("SET", e);
            return;
        }
        track(f.toCompletableFuture().whenComplete((r, e) -> {
            writePermits.release();
            if (e != null) {
                publishFailures.incrementAndGet();
                presence.invalidate(key);
                store.failed("SET", e);
            }
        }));
    }

    /**
     * Verifies a slot's bytes against their CRC32C. A block that fails is unpublished here and
     * deleted from Redis.
     */
    @Override
    public boolean verify(int slot) {
        Tier.checkSlot(this, slot);
        int expected;
        byte[] v;
        lock.lock();
        try {
            checkOpen();
            if (bad[slot]) {
                return false;
            }
            if (slots.isFree(slot) || !slots.crcKnown(slot) || values[slot] == null) {
                return true;
            }
            expected = slots.crc(slot);
            v = values[slot];
        } finally {
            lock.unlock();
        }
        if (format.crcOfPayload(v, 0, slotBytes) == expected) {
            return true;
        }
        quarantine(slot, expected);
        return false;
    }

    private void quarantine(int slot, int expected) {
        checksumFailures.incrementAndGet();
        lock.lock();
        try {
            if (!closed && slots.crcKnown(slot) && slots.crc(slot) == expected) {
                slots.forgetCrc(slot);
                bad[slot] = true;
                BlockKey k = slots.key(slot);
                if (k != null) {
                    unpublishLocked(slot);
                    LOG.log(System.Logger.Level.WARNING, "redis tier ''{0}'': block {1} in slot {2} failed its"
                            + " CRC32C check: unpublished and deleted, a miss", name, k, slot);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Forgets a slot's block here and deletes it from Redis (for every process sharing the
     * namespace), so that neither a lookup nor a new tier finds it. A retained slot becomes free.
     *
     * @throws IllegalStateException when the slot is neither held nor retained
     */
    @Override
    public void unpublish(int slot) {
        Tier.checkSlot(this, slot);
        lock.lock();
        try {
            checkOpen();
            if (slots.isFree(slot)) {
                throw new IllegalStateException("slot " + slot + " of tier '" + name
                        + "' is neither allocated nor published");
            }
            unpublishLocked(slot);
        } finally {
            lock.unlock();
        }
    }

    private void unpublishLocked(int slot) {
        BlockKey k = slots.forgetKey(slot);
        if (k != null) {
            prefetched.remove(k);
            delete(k);
        }
    }

    private void delete(BlockKey key) {
        presence.put(key, Boolean.FALSE);
        if (!store.available()) {
            return;
        }
        try {
            track(store.del(redisKey(key)).toCompletableFuture());
        } catch (RuntimeException e) {
            store.failed("DEL", e);
        }
    }

    /** Keeps a write until it has completed and its bookkeeping ran, for {@link #awaitWrites} and close. */
    private void track(CompletableFuture<?> f) {
        pending.add(f);
        f.whenComplete((r, e) -> pending.remove(f));
    }

    // ------------------------------------------------------------------ state

    /**
     * Waits until the writes (and deletes) sent so far have been answered, or failed, at most
     * {@code timeout}.
     *
     * @return true when none is in flight any more
     */
    public boolean awaitWrites(java.time.Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (CompletableFuture<?> f : List.copyOf(pending)) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            try {
                f.get(left, TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            } catch (Exception e) {
                // counted by the write's own completion
            }
        }
        return true;
    }

    /** @return whether Redis is unreachable now (connection lost or a recent timeout): lookups miss at once */
    public boolean degraded() {
        return store.degraded();
    }

    /** @return a snapshot of the counters */
    public RedisTierStats stats() {
        CacheStats c = presence.stats();
        return new RedisTierStats(lookups.get(), localHits.get(), remoteHits.get(), misses.get(), publishes.get(),
                publishFailures.get(), publishesSkipped.get(), invalidValues.get(), checksumFailures.get(),
                prefetches.get(), prefetchedBlocks.get(), c.hitCount(), c.missCount(), store.roundTrips.get(),
                store.errors.get(), store.reconnects.get(), store.degraded());
    }

    /** The key of a block in Redis: the namespace, ':', the content address in hex. */
    byte[] redisKey(BlockKey key) {
        byte[] hex = HexFormat.of().formatHex(key.toBytes()).getBytes(StandardCharsets.US_ASCII);
        byte[] k = new byte[keyPrefix.length + hex.length];
        System.arraycopy(keyPrefix, 0, k, 0, keyPrefix.length);
        System.arraycopy(hex, 0, k, keyPrefix.length, hex.length);
        return k;
    }

    /** The bytes of one written or looked-up slot (package-private for tests that damage them behind the tier's back). */
    MemorySegment slotMemory(int slot) {
        lock.lock();
        try {
            return MemorySegment.ofArray(values[slot]).asSlice(format.payloadOffset(), slotBytes);
        } finally {
            lock.unlock();
        }
    }

    /** @return the key whose bytes a slot holds here, or null (for tests) */
    BlockKey keyOfSlotForTest(int slot) {
        lock.lock();
        try {
            return slots.key(slot);
        } finally {
            lock.unlock();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("tier '" + name + "' is closed");
        }
    }

    /**
     * Waits for writes in flight to land (each is bounded by the command timeout), then closes the
     * connection and releases the staging memory. Blocks that reached Redis are found by the next
     * tier on it.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            prefetched.clear();
        } finally {
            lock.unlock();
        }
        // each write is bounded by the command timeout from when it was sent: wait for each in turn,
        // so that a backlog on a busy server lands, and a dead server costs about one timeout
        for (CompletableFuture<?> f : List.copyOf(pending)) {
            try {
                f.get(config.timeout().toNanos() + TimeUnit.SECONDS.toNanos(1), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            } catch (Exception e) {
                // counted by the write's own completion
            }
        }
        store.close();
        lock.lock();
        try {
            java.util.Arrays.fill(values, null);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public String toString() {
        return "RedisTier[" + name + ", " + backing() + ", namespace " + config.namespace() + "]";
    }
}
