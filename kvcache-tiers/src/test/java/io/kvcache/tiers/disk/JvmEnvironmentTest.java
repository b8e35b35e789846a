package io.kvcache.tiers.disk;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the disk tier needs from and does to the JVM it runs in: the Chronicle flags (one list,
 * one message when missing), and no file written outside the cache directory, in particular
 * none of Chronicle's analytics files in the user's home.
 */
class JvmEnvironmentTest {
    @TempDir
    Path tmp;

    private static String run(Path workDir, List<String> jvmArgs, String... args) throws IOException, InterruptedException {
        return run(workDir, KillLoopTest.testClassPath(), jvmArgs, args);
    }

    private static String run(Path workDir, String classPath, List<String> jvmArgs, String... args)
            throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(classPath);
        cmd.add(EnvironmentProbe.class.getName());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(workDir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        return out;
    }

    private static List<Path> filesUnder(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).toList();
        }
    }

    /** @return every file and directory below {@code dir} */
    private static List<Path> entriesUnder(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> !p.equals(dir)).toList();
        }
    }

    @Test
    void surefireRunsWithEveryRequiredFlag() {
        assertEquals(List.of(), ChronicleJvmFlags.missing());
    }

    @Test
    void parentPomCarriesExactlyTheFlagList() throws IOException {
        Path pom = Path.of(System.getProperty("user.dir")).resolve("../pom.xml").normalize();
        Matcher m = Pattern.compile("<chronicle.jvm.flags>(.*?)</chronicle.jvm.flags>", Pattern.DOTALL)
                .matcher(Files.readString(pom));
        assertTrue(m.find(), "no chronicle.jvm.flags in " + pom);
        assertEquals(ChronicleJvmFlags.commandLine(), m.group(1).trim().replaceAll("\\s+", " "));
        for (String flag : ChronicleJvmFlags.REQUIRED) {
            String target = flag.substring(flag.indexOf('=') + 1, flag.lastIndexOf('='));
            String manifest = flag.startsWith("--add-opens") ? ChronicleJvmFlags.MANIFEST_ADD_OPENS
                    : ChronicleJvmFlags.MANIFEST_ADD_EXPORTS;
            assertTrue(List.of(manifest.split(" ")).contains(target), target + " missing from the manifest form");
        }
    }

    @Test
    void withoutTheFlagsTheTierRefusesWithOneMessageNamingThem() throws Exception {
        Path work = Files.createDirectory(tmp.resolve("work"));
        String out = run(work, List.of("-Duser.home=" + tmp.resolve("home")), tmp.resolve("cache").toString());
        String refused = out.lines().filter(l -> l.startsWith("REFUSED ")).findFirst().orElseThrow(() ->
                new AssertionError("the tier opened without the flags:\n" + out));
        for (String flag : ChronicleJvmFlags.REQUIRED) {
            assertTrue(refused.contains(flag), "message does not name " + flag + ": " + refused);
        }
        assertTrue(refused.contains("Start java with: " + ChronicleJvmFlags.commandLine()), refused);
        assertEquals(1, out.lines().filter(l -> l.contains("--add-")).count(), "more than one message:\n" + out);
        assertFalse(Files.exists(tmp.resolve("cache")), "a refused open left files behind");
    }

    @Test
    void chronicleMapArtifactNamesThePomsVersion() throws IOException {
        Path pom = Path.of(System.getProperty("user.dir")).resolve("../pom.xml").normalize();
        Matcher m = Pattern.compile("<chronicle-map.version>(.*?)</chronicle-map.version>").matcher(Files.readString(pom));
        assertTrue(m.find(), "no chronicle-map.version in " + pom);
        assertEquals("net.openhft:chronicle-map:" + m.group(1), ChronicleJvmFlags.CHRONICLE_MAP_ARTIFACT);
    }

    @Test
    void withoutChronicleMapOnTheClassPathTheTierRefusesNamingTheDependency() throws Exception {
        String cp = Stream.of(KillLoopTest.testClassPath().split(java.io.File.pathSeparator))
                .filter(e -> !e.replace('\\', '/').contains("/net/openhft/"))
                .collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator));
        assertNotEquals(KillLoopTest.testClassPath(), cp, "Chronicle Map is not on the test class path");
        Path work = Files.createDirectory(tmp.resolve("work"));
        // no Chronicle flags either: the missing dependency is what the message must name
        String out = run(work, cp, List.of("-Duser.home=" + tmp.resolve("home")), tmp.resolve("cache").toString());
        String refused = out.lines().filter(l -> l.startsWith("NO-CHRONICLE ")).findFirst().orElseThrow(() ->
                new AssertionError("no ChronicleMapMissingException without Chronicle Map:\n" + out));
        assertTrue(refused.contains(ChronicleJvmFlags.CHRONICLE_MAP_ARTIFACT), refused);
        assertFalse(out.contains("NoClassDefFoundError"), out);
        assertFalse(Files.exists(tmp.resolve("cache")), "a refused open left files behind");
    }

    @Test
    void nothingIsWrittenToTheUsersHomeOrOutsideTheCacheDirectory() throws Exception {
        Path home = Files.createDirectory(tmp.resolve("home"));
        Path work = Files.createDirectory(tmp.resolve("work"));
        Path cache = tmp.resolve("cache");
        List<String> flags = new ArrayList<>(ChronicleJvmFlags.REQUIRED);
        flags.addAll(ChronicleJvmFlags.RECOMMENDED);
        // no -Dchronicle.analytics.disable here: the tier must switch analytics off itself
        flags.add("-Duser.home=" + home);
        flags.add("-Djava.io.tmpdir=" + Files.createDirectory(tmp.resolve("systmp")));
        String out = run(work, flags, cache.toString());
        assertTrue(out.contains("OPENED analytics.disable=true"), out);
        assertEquals(List.of(), entriesUnder(home), "files or directories made in the user's home");
        assertEquals(List.of(), entriesUnder(work), "files written to the working directory");
        assertEquals(Stream.of(CacheDirectory.LOCK_FILE, MappedFileTier.DATA_FILE, MappedFileTier.INDEX_FILE).sorted().toList(),
                filesUnder(cache).stream().map(p -> p.getFileName().toString()).sorted().toList());
    }
}
