package io.kvcache.examples.demo;

import io.kvcache.core.layout.KvLayout;

/**
 * Tier sizes in blocks for a decode whose KV ends at {@code finalBlocks} blocks. Unset budgets
 * are chosen so that every tier takes part: the device holds an eighth of the final KV, the host
 * a quarter when a disk tier sits below it (else everything the device does not), a temporary
 * disk twice the final KV, a persistent one 256 MiB or twice the final KV.
 *
 * @param deviceBlocks slots of the device tier
 * @param hostBlocks   slots of the host tier
 * @param diskBlocks   slots of the disk tier, 0 without one
 */
public record Budgets(int deviceBlocks, int hostBlocks, int diskBlocks) {

    /** Fewest device slots a decode runs with: the current block, a window and the next window. */
    public static final int MIN_DEVICE_BLOCKS = 3;

    /**
     * @param o           the command line
     * @param layout      the cache layout
     * @param finalBlocks blocks of the longest request
     * @param withDisk    whether a disk tier is used
     * @param persistent  whether that disk tier outlives the run (its size is then fixed across runs)
     * @throws UsageException when a budget is too small to decode or larger than an int of slots
     */
    static Budgets choose(DemoOptions o, KvLayout layout, int finalBlocks, boolean withDisk, boolean persistent)
            throws UsageException {
        long bb = layout.blockBytes();
        int device = o.deviceBudget != null ? blocks("--device-budget", o.deviceBudget, bb)
                : Math.max(MIN_DEVICE_BLOCKS, finalBlocks / 8);
        if (device < MIN_DEVICE_BLOCKS) {
            throw new UsageException("--device-budget " + ByteSize.format(o.deviceBudget) + " holds " + device
                    + " blocks of " + ByteSize.format(bb) + "; decoding needs at least " + MIN_DEVICE_BLOCKS
                    + " (" + ByteSize.format(MIN_DEVICE_BLOCKS * bb) + ")");
        }
        // besides the decode's own blocks the host must take a follow-up request's fresh blocks
        int spare = 4;
        int host = o.hostBudget != null ? blocks("--host-budget", o.hostBudget, bb)
                : withDisk ? Math.max(2, finalBlocks / 4) : Math.max(2, finalBlocks - device + spare);
        if (host < 1) {
            throw new UsageException("--host-budget " + ByteSize.format(o.hostBudget) + " is smaller than one block of "
                    + ByteSize.format(bb));
        }
        int disk = 0;
        if (withDisk) {
            disk = o.diskBudget != null ? blocks("--disk-budget", o.diskBudget, bb)
                    : persistent ? defaultDiskBlocks(finalBlocks, bb) : 2 * finalBlocks + spare;
            if (disk < 1) {
                throw new UsageException("--disk-budget " + ByteSize.format(o.diskBudget)
                        + " is smaller than one block of " + ByteSize.format(bb));
            }
        }
        if ((long) device + host + disk < finalBlocks + 1) {
            throw new UsageException("the tiers hold " + (device + host + disk) + " blocks but the decode needs "
                    + (finalBlocks + 1) + " (" + ByteSize.format((finalBlocks + 1) * bb) + "); raise --host-budget"
                    + (withDisk ? " or --disk-budget" : " or add --disk-dir"));
        }
        return new Budgets(device, host, disk);
    }

    /**
     * 256 MiB, or the next power of two above twice the final KV when that is larger: the disk
     * file's capacity is fixed when it is made, so the default stays the same across runs of
     * different lengths.
     */
    static int defaultDiskBlocks(int finalBlocks, long blockBytes) {
        long want = Math.max(256L << 20, Long.highestOneBit(2L * (finalBlocks + 4) * blockBytes - 1) << 1);
        return (int) Math.min(Integer.MAX_VALUE, want / blockBytes);
    }

    private static int blocks(String flag, long bytes, long blockBytes) throws UsageException {
        long n = bytes / blockBytes;
        if (n > Integer.MAX_VALUE) {
            throw new UsageException(flag + " " + ByteSize.format(bytes) + " is more slots than a tier holds");
        }
        return (int) n;
    }
}
