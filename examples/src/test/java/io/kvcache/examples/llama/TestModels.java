package io.kvcache.examples.llama;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the test models that live beside the repository, never inside it. */
public final class TestModels {
    private TestModels() {
    }

    /** @return the repository root: the nearest directory above the working directory holding the examples module */
    public static Path repoRoot() {
        Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath();
        for (Path d = p; d != null; d = d.getParent()) {
            if (Files.isRegularFile(d.resolve("pom.xml")) && Files.isDirectory(d.resolve("examples"))) {
                return d;
            }
        }
        return p;
    }

    /**
     * @return {@code ../shared/models/stories260K.bin} relative to the repository root, or in the
     *     directory named by the system property {@code kvcache.test.models} (the GPU bundle's
     *     models/); the test is skipped when absent
     */
    public static Path stories260K() {
        String dir = System.getProperty("kvcache.test.models");
        Path model = dir != null ? Path.of(dir, "stories260K.bin")
                : repoRoot().resolve("../shared/models/stories260K.bin").normalize();
        assumeTrue(Files.isRegularFile(model), "test model absent: " + model);
        return model;
    }
}
