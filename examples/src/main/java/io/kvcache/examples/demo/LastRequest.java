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
        try {
            return parse(Files.readString(dir.resolve(FILE), StandardCharsets.UTF_8), modelId, blockTokens);
        } catch (IOException e) {
            return null;
        }
    }

    /** @return the prompt in a saved text, or null when absent, malformed or made for another model or block size */
    static int[] parse(String text, String modelId, int blockTokens) {
        if (text == null) {
            return null;
        }
        List<String> lines = text.lines().toList();
        if (lines.size() < 2 || !lines.get(0).equals(header(modelId, blockTokens))) {
            return null;
        }
        try {
            String[] parts = lines.get(1).split(",");
            int[] ids = new int[parts.length];
            for (int i = 0; i < parts.length; i++) {
                ids[i] = Integer.parseInt(parts[i].trim());
            }
            return ids;
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** @return the text that saves a prompt */
    static String format(String modelId, int blockTokens, int[] prompt) {
        StringBuilder sb = new StringBuilder(header(modelId, blockTokens)).append('\n');
        for (int i = 0; i < prompt.length; i++) {
            sb.append(i == 0 ? "" : ",").append(prompt[i]);
        }
        return sb.append('\n').toString();
    }

    /** Saves a prompt, replacing the previous one atomically. */
    static void write(Path dir, String modelId, int blockTokens, int[] prompt) throws IOException {
        Path tmp = dir.resolve(FILE + ".tmp");
        Files.writeString(tmp, format(modelId, blockTokens, prompt), StandardCharsets.UTF_8);
        Files.move(tmp, dir.resolve(FILE), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static String header(String modelId, int blockTokens) {
        return "model " + modelId + " block-tokens " + blockTokens;
    }
}
