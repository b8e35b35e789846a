package io.kvcache.core.transfer;

/**
 * One block copy within a batch.
 *
 * @param srcSlot slot in the batch's source tier
 * @param dstSlot slot in the batch's destination tier
 */
public record BlockMove(int srcSlot, int dstSlot) {
}
