package io.kvcache.examples.llama;

/** A file that is not a readable llama2.c checkpoint; the message names the file and the problem. */
public final class CheckpointException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message names the source and what is wrong with it */
    public CheckpointException(String message) {
        super(message);
    }

    /** @param message names the source and what is wrong with it; {@code cause} is the I/O error */
    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
