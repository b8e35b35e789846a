package io.kvcache.tiers.disk;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The JVM flags the disk tier's index (Chronicle Map 3.27 on JDK 25) needs, kept in one place:
 * Surefire's {@code argLine} (parent pom property {@code chronicle.jvm.flags}), the demo jar's
 * manifest and the bundle's launcher read this list, and a test checks the pom against it.
 *
 * <p>Each required flag was found necessary by starting Chronicle Map without it: without the
 * two {@code --add-opens} Chronicle's bootstrap fails, without {@code sun.nio.ch} it cannot map
 * its file, without {@code com.sun.tools.javac.file} it cannot compile its mutable header class
 * at run time (so the runtime must also contain the {@code jdk.compiler} module), and without
 * {@code jdk.internal.ref} it cannot unmap its buffers deterministically.
 */
public final class ChronicleJvmFlags {

    /** Flags without which the index does not open. */
    public static final List<String> REQUIRED = List.of(
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
            "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED");

    /**
     * Flags that silence JDK warnings about Chronicle's dependencies (jffi loads a native library
     * and uses {@code sun.misc.Unsafe}); recommended, not checked.
     */
    public static final List<String> RECOMMENDED = List.of(
            "--enable-native-access=ALL-UNNAMED",
            "--sun-misc-unsafe-memory-access=allow");

    /**
     * The required {@code --add-opens} as the value of an executable jar's {@code Add-Opens}
     * manifest attribute (which {@code java -jar} honours).
     */
    public static final String MANIFEST_ADD_OPENS = "java.base/java.lang java.base/java.lang.reflect";

    /** The required {@code --add-exports} as the value of an executable jar's {@code Add-Exports} manifest attribute. */
    public static final String MANIFEST_ADD_EXPORTS =
            "java.base/sun.nio.ch java.base/jdk.internal.ref jdk.compiler/com.sun.tools.javac.file";

    /**
     * The Maven coordinates of the Chronicle Map build the disk tier is tested with. {@code
     * kvcache-tiers} declares it optional, so an application that opens the disk tier depends on
     * it itself (a test keeps this equal to the parent pom's {@code chronicle-map.version}).
     */
    public static final String CHRONICLE_MAP_ARTIFACT = "net.openhft:chronicle-map:3.27ea0";

    /** A class of Chronicle Map's own jar: present exactly when the index can be built. */
    static final String CHRONICLE_MAP_CLASS = "net.openhft.chronicle.map.ChronicleMapBuilder";

    /** System property Chronicle reads before sending usage analytics; set in code, always. */
    static final String ANALYTICS_PROPERTY = "chronicle.analytics.disable";
    /** System property that stops Chronicle printing its banner on stdout. */
    static final String ANNOUNCER_PROPERTY = "chronicle.announcer.disable";
    /**
     * Where JNA (loaded by Chronicle's dependencies) unpacks its native stub; unset, it creates
     * {@code ~/.cache/JNA} in the user's home.
     */
    static final String JNA_TMPDIR_PROPERTY = "jna.tmpdir";

    private ChronicleJvmFlags() {
    }

    /** @return all flags, required then recommended, separated by spaces: a ready java command-line fragment */
    public static String commandLine() {
        List<String> all = new ArrayList<>(REQUIRED);
        all.addAll(RECOMMENDED);
        return String.join(" ", all);
    }

    /**
     * Switches off Chronicle's usage analytics and banner, and keeps JNA's unpacking out of the
     * user's home (in the system temporary directory, unless the application chose a place).
     * Must run before any Chronicle class is initialized: Chronicle reads these properties in
     * static initializers. Called from the static initializer of {@link MappedFileTier}, the
     * only entry point to Chronicle here.
     */
    static void quietChronicle() {
        System.setProperty(ANALYTICS_PROPERTY, "true");
        System.setProperty(ANNOUNCER_PROPERTY, "true");
        if (System.getProperty(JNA_TMPDIR_PROPERTY) == null) {
            System.setProperty(JNA_TMPDIR_PROPERTY, System.getProperty("java.io.tmpdir"));
        }
    }

    /**
     * @param target the module Chronicle's classes live in (the unnamed module of their loader)
     * @return the required flags this JVM was started without
     */
    static List<String> missing(Module target) {
        List<String> missing = new ArrayList<>();
        Module base = Object.class.getModule();
        if (!base.isOpen("java.lang", target)) {
            missing.add(REQUIRED.get(0));
        }
        if (!base.isOpen("java.lang.reflect", target)) {
            missing.add(REQUIRED.get(1));
        }
        if (!base.isExported("sun.nio.ch", target)) {
            missing.add(REQUIRED.get(2));
        }
        if (!base.isExported("jdk.internal.ref", target)) {
            missing.add(REQUIRED.get(3));
        }
        Optional<Module> javac = ModuleLayer.boot().findModule("jdk.compiler");
        if (javac.isEmpty() || !javac.get().isExported("com.sun.tools.javac.file", target)) {
            missing.add(REQUIRED.get(4));
        }
        return missing;
    }

    /**
     * Refuses to go on when Chronicle Map is not on the class path, naming the dependency to add.
     * Loads no Chronicle class (the lookup does not initialize it).
     *
     * @throws ChronicleMapMissingException when Chronicle Map cannot be found
     */
    static void requireChronicleMap() {
        try {
            Class.forName(CHRONICLE_MAP_CLASS, false, ChronicleJvmFlags.class.getClassLoader());
        } catch (ClassNotFoundException | LinkageError e) {
            throw new ChronicleMapMissingException("the disk tier's index needs Chronicle Map, which is not on the "
                    + "class path: kvcache-tiers declares it optional, so add the dependency "
                    + CHRONICLE_MAP_ARTIFACT + " to the application (and start java with: " + commandLine() + ")", e);
        }
    }

    /** @return the required flags missing from this JVM, checked for the loader of this class */
    public static List<String> missing() {
        ClassLoader loader = ChronicleJvmFlags.class.getClassLoader();
        return missing(loader == null ? ClassLoader.getSystemClassLoader().getUnnamedModule() : loader.getUnnamedModule());
    }

    /**
     * Refuses to go on when a required flag is missing, with one message naming the missing flags
     * and the full list to add.
     *
     * @throws IllegalStateException naming the missing flags
     */
    static void requirePresent() {
        List<String> missing = missing();
        if (!missing.isEmpty()) {
            boolean noCompiler = ModuleLayer.boot().findModule("jdk.compiler").isEmpty();
            throw new IllegalStateException("the disk tier's index (Chronicle Map) needs JVM flags this JVM was "
                    + "started without: " + String.join(" ", missing)
                    + (noCompiler ? " (and the runtime lacks the jdk.compiler module)" : "")
                    + ". Start java with: " + commandLine());
        }
    }
}
