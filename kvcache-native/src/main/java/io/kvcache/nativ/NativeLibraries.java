package io.kvcache.nativ;

import com.sun.jna.Library;
import com.sun.jna.Native;

/**
 * Loads native libraries through JNA without writing into the user's home: JNA unpacks its own
 * stub library into {@code jna.tmpdir}, which by default is {@code ~/.cache/JNA}. Unless the
 * application chose a place, this points it at the JVM's temporary directory.
 */
public final class NativeLibraries {
    private NativeLibraries() {
    }

    /** Sets {@code jna.tmpdir} to {@code java.io.tmpdir} when the application has not set it. */
    public static void keepJnaOutOfHome() {
        if (System.getProperty("jna.tmpdir") == null) {
            System.setProperty("jna.tmpdir", System.getProperty("java.io.tmpdir"));
        }
    }

    /**
     * @param name library name as {@link Native#load(String, Class)} takes it
     * @param type the JNA interface
     * @return the bound library
     */
    public static <T extends Library> T load(String name, Class<T> type) {
        keepJnaOutOfHome();
        return Native.load(name, type);
    }
}
