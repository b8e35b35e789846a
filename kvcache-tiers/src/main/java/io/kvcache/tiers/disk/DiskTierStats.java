package io.kvcache.tiers.disk;

/**
 * A snapshot of the disk tier's counters since it was opened.
 *
 * @param recoveredBlocks      published blocks found valid at open
 * @param droppedAtOpen        slot headers or index entries found invalid at open and dropped
 * @param uncleanOpen          whether the previous process did not close the tier (crash, kill); false when the
 *                             header was damaged and could not tell (see {@code headerRepaired})
 * @param indexRebuilt         whether the index was unreadable or corrupt and was rebuilt from the slot headers
 * @param lookups              {@code lookup} calls
 * @param hits                 lookups that returned a verified block
 * @param publishes            blocks published
 * @param evictions            unreferenced published blocks dropped to make room
 * @param admissionRejections  allocations refused because the block to drop was used more often
 * @param checksumFailures     blocks whose bytes did not match their CRC32C: quarantined, served as misses
 * @param wholeBlockChecks     CRC32C checks of a whole block's bytes (by reads and verifies); a block read
 *                             layer by layer right after a check is not checked again for each layer
 * @param ioErrors             I/O errors and faults of the mapped file (each also logged)
 * @param retiredSlots         slots taken out of use by I/O errors, truncation or a disk too full to preallocate
 * @param fileLost             whether the data file was deleted or replaced underneath (the tier then failed)
 * @param headerRepaired       whether the file header failed its checksum in a field that does not identify the
 *                             file (open state, index checksum or length, reserved bytes) and was rewritten at open;
 *                             its blocks were recovered from their slot headers and the index rebuilt
 */
public record DiskTierStats(long recoveredBlocks, long droppedAtOpen, boolean uncleanOpen, boolean indexRebuilt,
        long lookups, long hits, long publishes, long evictions, long admissionRejections,
        long checksumFailures, long wholeBlockChecks, long ioErrors, long retiredSlots, boolean fileLost, boolean headerRepaired) {
}
