package io.kvcache.nativ.cuda;

import io.kvcache.nativ.NativeLibraries;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;
import java.util.ArrayList;
import java.util.List;

/**
 * Entry point to the CUDA driver. The library is loaded, and {@code cuInit} called, on the first
 * call of {@link #driver()}; on a host without the NVIDIA driver that call throws
 * {@link CudaUnavailableException} with a message saying so, and nothing is attempted before.
 */
public final class Cuda {

    /** System property naming the driver library to load instead of {@code cuda}/{@code libcuda.so.1}. */
    public static final String LIBRARY_PROPERTY = "kvcache.cuda.library";

    private Cuda() {
    }

    /**
     * The driver, initialised.
     *
     * @throws CudaUnavailableException if the library cannot be loaded or {@code cuInit} fails
     */
    public static CuLib driver() {
        Loaded l = Holder.LOADED;
        if (l.failure != null) {
            throw new CudaUnavailableException(l.failure.getMessage(), l.failure.getCause());
        }
        return l.lib;
    }

    /** @return whether the driver loaded and initialised, without throwing */
    public static boolean available() {
        return Holder.LOADED.failure == null;
    }

    /** @return the driver's CUDA version as an integer, e.g. 13000 for 13.0 */
    public static int driverVersion() {
        IntByReference v = new IntByReference();
        check(driver().cuDriverGetVersion(v), "cuDriverGetVersion");
        return v.getValue();
    }

    /** @return the number of CUDA devices */
    public static int deviceCount() {
        IntByReference n = new IntByReference();
        check(driver().cuDeviceGetCount(n), "cuDeviceGetCount");
        return n.getValue();
    }

    /**
     * Throws the named exception for a failed call. Prefer {@link CudaContext#check}, which also
     * marks the context failed on sticky errors.
     *
     * @throws CudaException if {@code result} is not {@code CUDA_SUCCESS}
     */
    public static void check(int result, String call) {
        if (result != 0) {
            throw CudaException.of(call, result, describe(result));
        }
    }

    /** @return the driver's description of a result code, or null if it has none */
    static String describe(int result) {
        Loaded l = Holder.LOADED;
        if (l.lib == null) {
            return null;
        }
        PointerByReference text = new PointerByReference();
        if (l.lib.cuGetErrorString(result, text) != 0 || text.getValue() == null) {
            return null;
        }
        return text.getValue().getString(0);
    }

    private static final class Holder {
        static final Loaded LOADED = load(libraryNames());
    }

    static List<String> libraryNames() {
        String configured = System.getProperty(LIBRARY_PROPERTY);
        return configured != null ? List.of(configured) : List.of("cuda", "libcuda.so.1");
    }

    /** The outcome of loading: the library, or why not. Exactly one field is set. */
    record Loaded(CuLib lib, CudaUnavailableException failure) {
    }

    /**
     * Loads the first library that opens and initialises it. Package-visible so that the failure
     * message can be tested on any host.
     */
    static Loaded load(List<String> names) {
        List<String> reasons = new ArrayList<>();
        UnsatisfiedLinkError last = null;
        for (String name : names) {
            CuLib lib;
            try {
                lib = NativeLibraries.load(name, CuLib.class);
            } catch (UnsatisfiedLinkError e) {
                last = e;
                reasons.add(name + ": " + firstLine(e.getMessage()));
                continue;
            }
            int rc;
            try {
                rc = lib.cuInit(0);
            } catch (UnsatisfiedLinkError e) {
                last = e;
                reasons.add(name + " has no cuInit: " + firstLine(e.getMessage()));
                continue;
            }
            if (rc != 0) {
                PointerByReference text = new PointerByReference();
                String desc = lib.cuGetErrorString(rc, text) == 0 && text.getValue() != null
                        ? text.getValue().getString(0) : null;
                CudaException cause = CudaException.of("cuInit", rc, desc);
                return new Loaded(null, new CudaUnavailableException(
                        "the CUDA driver loaded from '" + name + "' but did not initialise: " + cause.getMessage(),
                        cause));
            }
            return new Loaded(lib, null);
        }
        return new Loaded(null, new CudaUnavailableException(
                "CUDA is not available: the NVIDIA driver library (libcuda) could not be loaded; is an NVIDIA "
                        + "driver installed on this host? Tried " + String.join("; ", reasons), last));
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unknown error";
        }
        // JNA's message lists every path it tried, one per line: the first two lines suffice
        String[] lines = s.split("\n");
        String t = lines.length > 1 ? lines[0] + " " + lines[1].trim() : lines[0];
        return t.length() > 300 ? t.substring(0, 300) + "..." : t;
    }
}
