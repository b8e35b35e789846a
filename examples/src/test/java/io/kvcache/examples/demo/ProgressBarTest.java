package io.kvcache.examples.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProgressBarTest {

    @Test
    void withoutATerminalItPrintsOneLinePerTenthFromTheFirstStep() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(bytes, true, StandardCharsets.UTF_8), "decode", false);
        for (int i = 1; i <= 1000; i++) {
            bar.update(i, 1000, "device 3/3");
        }
        bar.finish();
        String[] lines = bytes.toString(StandardCharsets.UTF_8).split("\n");
        assertEquals(11, lines.length, String.join("\n", lines));
        assertTrue(lines[10].startsWith("decode [##############################] 100% 1000/1000 tok"), lines[10]);
        assertTrue(lines[10].endsWith("device 3/3"), lines[10]);
    }

    @Test
    void onATerminalItRedrawsOneLineAndEndsIt() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(bytes, true, StandardCharsets.UTF_8), "decode", true);
        for (int i = 1; i <= 50; i++) {
            bar.update(i, 50, "");
        }
        bar.finish();
        String s = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(s.startsWith("\r"), s);
        assertEquals(1, s.chars().filter(c -> c == '\n').count(), s);
        assertTrue(s.contains("100% 50/50 tok"), s);
    }
}
