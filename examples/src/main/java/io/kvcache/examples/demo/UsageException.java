package io.kvcache.examples.demo;

/** A bad command line or input file; the message is the one line the user sees. */
public final class UsageException extends Exception {
    private static final long serialVersionUID = 1L;

    /** @param message what is wrong, naming the flag or file */
    public UsageException(String message) {
        super(message);
    }
}
