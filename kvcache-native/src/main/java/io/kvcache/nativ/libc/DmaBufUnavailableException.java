package io.kvcache.nativ.libc;

/**
 * A DMA-BUF source could not provide a buffer: its device file is absent, cannot be opened, or
 * refused the allocation. Nothing was left open.
 */
public final class DmaBufUnavailableException extends RuntimeException {
    private final String source;

    public DmaBufUnavailableException(String source, String reason) {
        super(source + ": " + reason);
        this.source = source;
    }

    /** @return the device file that was tried */
    public String source() {
        return source;
    }
}
