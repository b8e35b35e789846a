package io.kvcache.examples.packaging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library modules work on the module path, as a JPMS application uses them: an application
 * module ({@code src/test/resources/modulepath/app}) compiles against {@code io.kvcache.tiers}
 * with nothing but the library and its dependencies on the module path, runs in a child JVM with
 * {@code java --module-path ... -m}, stores a block, demotes it and reads it back; a module that
 * imports a package the library keeps internal does not compile.
 *
 * <p>The library comes from this build: the jars once {@code package} has run, otherwise the
 * modules' {@code target/classes} (an exploded module).
 */
class ModulePathTest {
    /** The library modules and the named modules they require. */
    private static final Set<String> LIBRARY = Set.of("io.kvcache.core", "io.kvcache.nativ", "io.kvcache.tiers",
            "org.agrona", "com.sun.jna");
    /** What an application gives a module-path JVM: JNA and the host tiers call restricted methods. */
    static final String NATIVE_ACCESS = "--enable-native-access=com.sun.jna,io.kvcache.tiers";

    private static String modulePath;

    @TempDir
    Path tmp;

    @BeforeAll
    static void findTheLibraryModules() {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Map<String, String> found = new TreeMap<>();
        for (String entry : cp.split(File.pathSeparator)) {
            Path p = Path.of(entry);
            if (!Files.exists(p) || entry.contains("test-classes") || entry.endsWith("-tests.jar")) {
                continue;
            }
            for (ModuleReference m : ModuleFinder.of(p).findAll()) {
                if (LIBRARY.contains(m.descriptor().name())) {
                    found.put(m.descriptor().name(), entry);
                }
            }
        }
        assertEquals(LIBRARY, found.keySet(), "library modules on the test class path: " + found);
        assertTrue(!ModuleFinder.of(Path.of(found.get("io.kvcache.tiers"))).findAll().iterator().next()
                .descriptor().isAutomatic(), "io.kvcache.tiers is an automatic module");
        modulePath = String.join(File.pathSeparator, found.values());
    }

    private static Path resource(String name) throws URISyntaxException {
        return Path.of(ModulePathTest.class.getResource("/modulepath/" + name).toURI());
    }

    /** Compiles every source under {@code src} into {@code out} against the library's module path. */
    private static CompileResult compile(Path src, Path out) throws IOException {
        Files.createDirectories(out);
        List<String> args = new ArrayList<>(List.of("--module-path", modulePath, "-d", out.toString(), "-Xlint:all",
                // not the test class path, which javac would otherwise take from this JVM
                "--class-path", out.toString()));
        try (Stream<Path> s = Files.walk(src)) {
            s.filter(p -> p.toString().endsWith(".java")).forEach(p -> args.add(p.toString()));
        }
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = ToolProvider.getSystemJavaCompiler().run(null, null, err, args.toArray(String[]::new));
        return new CompileResult(rc, err.toString(StandardCharsets.UTF_8));
    }

    private record CompileResult(int rc, String messages) {
    }

    @Test
    void anApplicationModuleCompilesAndRunsOnTheModulePathWithoutWarnings() throws Exception {
        Path out = tmp.resolve("app");
        CompileResult c = compile(resource("app"), out);
        assertEquals(0, c.rc(), c.messages());
        assertEquals("", c.messages().strip(), "warnings compiling against the library modules");

        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                NATIVE_ACCESS, "-Xshare:auto", "--module-path", modulePath + File.pathSeparator + out,
                "-m", "io.kvcache.modulecheck/io.kvcache.modulecheck.ModuleCheck");
        Path stderr = tmp.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectError(stderr.toFile()).start();
        String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the module-path program did not finish");
        String err = Files.readString(stderr);
        assertEquals(0, p.exitValue(), stdout + err);
        assertEquals("module io.kvcache.core and io.kvcache.tiers; exports io.kvcache.tiers.device,"
                + "io.kvcache.tiers.disk,io.kvcache.tiers.host,io.kvcache.tiers.transfer;"
                + " block read back identical from the host tier", stdout.strip(), err);
        assertEquals("", err.strip(), "the module-path program wrote to stderr");
    }

    @Test
    void aPackageTheLibraryKeepsInternalIsNotReadable() throws Exception {
        CompileResult c = compile(resource("internal"), tmp.resolve("internal"));
        assertNotEquals(0, c.rc(), "a module compiled against io.kvcache.tiers.slots");
        assertTrue(c.messages().contains("io.kvcache.tiers.slots") && c.messages().contains("not export"),
                c.messages());
    }

}
