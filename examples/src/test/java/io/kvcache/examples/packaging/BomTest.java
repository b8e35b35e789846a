package io.kvcache.examples.packaging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The BOM ({@code kvcache-bom/pom.xml}) lists every library module of the build, at the
 * project's version, and the JNA and Chronicle Map versions the build uses. A library module is
 * one with a {@code module-info.java}.
 */
class BomTest {
    private static final Path ROOT = Path.of(System.getProperty("user.dir")).resolve("..").normalize();

    private static String read(String path) throws IOException {
        return Files.readString(ROOT.resolve(path));
    }

    private static List<String> all(String regex, String text) {
        List<String> found = new ArrayList<>();
        Matcher m = Pattern.compile(regex).matcher(text);
        while (m.find()) {
            found.add(m.group(1));
        }
        return found;
    }

    /** @return the first group of the first match */
    private static String first(String regex, String text) {
        List<String> found = all(regex, text);
        assertTrue(!found.isEmpty(), "no match for " + regex);
        return found.get(0);
    }

    @Test
    void listsEveryLibraryModuleAtTheProjectVersion() throws IOException {
        String parent = read("pom.xml");
        String bom = read("kvcache-bom/pom.xml");
        TreeSet<String> libraries = new TreeSet<>();
        for (String module : all("<module>([^<]+)</module>", parent)) {
            if (Files.exists(ROOT.resolve(module).resolve("src/main/java/module-info.java"))) {
                libraries.add(first("</parent>\\s*<artifactId>([^<]+)</artifactId>", read(module + "/pom.xml")));
            }
        }
        assertTrue(libraries.containsAll(List.of("kvcache-core", "kvcache-native", "kvcache-tiers")), libraries.toString());
        TreeSet<String> listed = new TreeSet<>(all(
                "<groupId>io\\.kvcache</groupId>\\s*<artifactId>([^<]+)</artifactId>\\s*<version>\\$\\{project\\.version}",
                bom));
        assertEquals(libraries, listed, "library modules against the BOM's entries");
        assertEquals(first("<artifactId>kvcache-parent</artifactId>\\s*<version>([^<]+)</version>", parent),
                first("<artifactId>kvcache-bom</artifactId>\\s*<version>([^<]+)</version>", bom),
                "the BOM's version is the project's");
    }

    @Test
    void pinsTheJnaAndChronicleVersionsOfTheBuild() throws IOException {
        String parent = read("pom.xml");
        String bom = read("kvcache-bom/pom.xml");
        for (String property : List.of("jna.version", "chronicle-map.version")) {
            String tag = "<" + Pattern.quote(property) + ">([^<]+)</" + Pattern.quote(property) + ">";
            assertEquals(first(tag, parent), first(tag, bom), property);
        }
    }
}
