package io.kvcache.tiers.disk;

import static io.kvcache.tiers.disk.TestBlocks.fill;
import static io.kvcache.tiers.disk.TestBlocks.key;
import static io.kvcache.tiers.disk.TestBlocks.matches;

import io.kvcache.core.block.BlockKey;
import io.kvcache.core.tier.BlockUnavailableException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.SplittableRandom;

/**
 * The process {@link KillLoopTest} kills: opens the disk tier (recovering after the previous
 * kill), checks every block it can find against the bytes its key stands for, reports, then
 * stores, reads, overwrites and evicts blocks as fast as it can until it is killed.
 *
 * <p>Output lines, in order: {@code STARTED} (main began), {@code OPENED} (the tier is open, and
 * its file marked open), {@code VERIFIED <survivors> <wrong> <misses> <unclean> <rebuilt>},
 * {@code READY}, then during the load {@code PUBLISHED <n>} after the 1st, 2nd, 4th, 8th, ...
 * publish returned, and {@code WRONG <id>} for any wrong bytes served.
 */
public final class KillLoopChild {
    /** Distinct block ids the workload draws from; more than the tier holds, so it evicts. */
    static final int KEYSPACE = 160;
    /** Slots in the tier. */
    static final int SLOTS = 48;
    /** Blocks per prefix chain: id's parent is id - 1 unless id is a multiple of this. */
    static final int CHAIN = 8;

    private KillLoopChild() {
    }

    static MappedFileTier open(Path dir) {
        return MappedFileTier.builder(TestBlocks.SMALL).directory(dir).modelId(TestBlocks.MODEL)
                .capacityBytes(SLOTS * DiskFileDescriptor.slotStride(TestBlocks.SMALL.blockBytes())).open();
    }

    static BlockKey parent(long id) {
        return id % CHAIN == 0 ? null : key(id - 1);
    }

    /** Looks every id up, checks the bytes, frees. @return {survivors, wrong, misses} */
    static long[] verifyAll(MappedFileTier tier, MemorySegment buf) {
        long survivors = 0;
        long wrong = 0;
        long misses = 0;
        for (int id = 0; id < KEYSPACE; id++) {
            int slot = tier.lookup(key(id));
            if (slot < 0) {
                misses++;
                continue;
            }
            try {
                tier.read(slot, 0, buf);
                if (matches(buf, id)) {
                    survivors++;
                } else {
                    wrong++;
                }
            } catch (BlockUnavailableException e) {
                misses++;
            } finally {
                tier.free(slot);
            }
        }
        return new long[] {survivors, wrong, misses};
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        long seed = Long.parseLong(args[1]);
        long runMillis = args.length > 2 ? Long.parseLong(args[2]) : Long.MAX_VALUE;
        SplittableRandom rnd = new SplittableRandom(seed);
        System.out.println("STARTED");
        System.out.flush();
        MappedFileTier tier = open(dir);
        System.out.println("OPENED");
        System.out.flush();
        MemorySegment buf = Arena.ofAuto().allocate(tier.slotBytes());
        long[] v = verifyAll(tier, buf);
        DiskTierStats st = tier.stats();
        System.out.println("VERIFIED " + v[0] + " " + v[1] + " " + v[2] + " " + st.uncleanOpen() + " " + st.indexRebuilt());
        System.out.println("READY");
        System.out.flush();
        ArrayDeque<int[]> held = new ArrayDeque<>();
        long published = 0;
        long end = runMillis == Long.MAX_VALUE ? Long.MAX_VALUE : System.currentTimeMillis() + runMillis;
        while (System.currentTimeMillis() < end) {
            // skewed ids: low ids are asked for more often, so admission has something to protect
            double r = rnd.nextDouble();
            int id = (int) (KEYSPACE * r * r);
            int op = rnd.nextInt(10);
            if (op < 5) {
                if (tier.contains(key(id))) {
                    continue;
                }
                int slot = tier.allocate(key(id));
                if (slot < 0) {
                    continue;
                }
                fill(buf, id);
                if (rnd.nextBoolean()) {
                    tier.write(slot, 0, buf);
                } else {
                    long half = buf.byteSize() / 2;
                    tier.write(slot, 0, buf.asSlice(0, half));
                    tier.write(slot, half, buf.asSlice(half));
                }
                tier.publish(slot, key(id), parent(id));
                if (Long.bitCount(++published) == 1) {
                    System.out.println("PUBLISHED " + published);
                    System.out.flush();
                }
                if (rnd.nextInt(4) == 0) {
                    held.add(new int[] {slot, id});
                } else {
                    tier.free(slot);
                }
            } else if (op < 9) {
                int slot = tier.lookup(key(id));
                if (slot >= 0) {
                    try {
                        tier.read(slot, 0, buf);
                        if (!matches(buf, id)) {
                            System.out.println("WRONG " + id);
                            System.out.flush();
                        }
                    } catch (BlockUnavailableException e) {
                        // a miss
                    }
                    held.add(new int[] {slot, id});
                }
            } else if (!held.isEmpty()) {
                int[] h = held.poll();
                if (rnd.nextInt(3) == 0) {
                    // overwrite a held block with another id's bytes: must unpublish the old key
                    int other = (h[1] + 1 + rnd.nextInt(KEYSPACE - 1)) % KEYSPACE;
                    if (!tier.contains(key(other))) {
                        fill(buf, other);
                        tier.write(h[0], 0, buf);
                        tier.publish(h[0], key(other), parent(other));
                    }
                }
                tier.free(h[0]);
            }
            while (held.size() > SLOTS / 3) {
                tier.free(held.poll()[0]);
            }
        }
        tier.close();
        System.out.println("CLOSED");
    }
}
