/**
 * JNA bindings to the CUDA driver API and libc. The module is named {@code io.kvcache.nativ}
 * ({@code native} is a Java keyword, so it cannot be a package or module name part).
 * {@code io.kvcache.nativ} itself (library loading) is internal.
 */
@SuppressWarnings({"requires-automatic", "requires-transitive-automatic"}) // JNA 5.19's jar is an automatic module
module io.kvcache.nativ {
    // the bindings' signatures use JNA types (Pointer, Library, by-reference holders)
    requires transitive com.sun.jna;

    exports io.kvcache.nativ.cuda;
    exports io.kvcache.nativ.libc;
    // JNA reads and writes Structure fields reflectively
    opens io.kvcache.nativ.libc to com.sun.jna;
}
