package io.kvcache.core.tier;

/** Turns a byte capacity into a slot count, refusing capacities that hold no block. */
public final class TierCapacity {
    private TierCapacity() {
    }

    /**
     * @param tierName      for error messages
     * @param capacityBytes capacity in bytes, positive
     * @param slotBytes     bytes per slot, positive
     * @return whole slots that fit
     * @throws IllegalArgumentException when the capacity or slot size is not positive, the
     *     capacity holds no slot, or more than {@link Integer#MAX_VALUE} slots
     */
    public static int slots(String tierName, long capacityBytes, long slotBytes) {
        if (capacityBytes <= 0) {
            throw new IllegalArgumentException("capacity of tier '" + tierName + "' must be positive, was "
                    + capacityBytes + " bytes");
        }
        if (slotBytes <= 0) {
            throw new IllegalArgumentException("slot size of tier '" + tierName + "' must be positive, was "
                    + slotBytes + " bytes");
        }
        long slots = capacityBytes / slotBytes;
        if (slots == 0) {
            throw new IllegalArgumentException("capacity of tier '" + tierName + "' (" + capacityBytes
                    + " bytes) holds no block of " + slotBytes + " bytes");
        }
        if (slots > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("capacity of tier '" + tierName + "' is " + slots
                    + " slots, more than " + Integer.MAX_VALUE);
        }
        return (int) slots;
    }
}
