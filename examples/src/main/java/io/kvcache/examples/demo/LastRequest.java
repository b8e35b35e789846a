package io.kvcache.examples.demo;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The prompt of a run's follow-up request, kept beside the disk tier so the next run can send it
 * again first thing: its prefix blocks are then found in the disk tier (restart reuse), as a
 * service resuming a conversation after a restart would find them.
 *
 * <p>File {@value #FILE}: line 1 {@code model <modelId> block-tokens <n>}, line 2 the token ids,
 * comma-separated. A file for other weights or another block size is ignored.
 */
final class LastRequest {
    static final String FILE = "demo-last-request.txt";

    private LastRequest() {
    }

    /** @return the saved prompt, or null when absent, unreadable or made for another model or block size */
    static int[] read(Path dir, String modelId, int blockTokens) {
        Path f = dir.resolve(FILE);
        try {
            List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
            if (lines.size() < 2 || !lines.get(0).equals(header(modelId, blockTokens))) {
                return null;
            }
            String[] parts = lines.get(1).split(",");
            int[] ids = new int[parts.length];
            for (int i = 0; i < parts.length; i++) {
                ids[i] = Integer.parseInt(parts[i].trim());
            }
            return ids;
        } catch (IOException | NumberFormatException e) {
            return null;
        }
    }

    /** Saves a prompt, replacing the previous one atomically. */
    static void write(Path dir, String modelId, int blockTokens, int[] prompt) throws IOException {
        StringBuilder sb = new StringBuilder(header(modelId, blockTokens)).append('\n');
        for (int i = 0; i < prompt.length; i++) {
            sb.append(i == 0 ? "" : ",").append(prompt[i]);
        }
        sb.append('\n');
        Path tmp = dir.resolve(FILE + ".tmp");
        Files.writeString(tmp, sb, StandardCharsets.UTF_8);
        Files.move(tmp, dir.resolve(FILE), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static String header(String modelId, int blockTokens) {
        return "model " + modelId + " block-tokens " + blockTokens;
    }
}
