package io.kvcache.examples.quickstart;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The README's quick start runs as shown, over a context larger than the device tier. */
class QuickStartTest {
    @Test
    void runsOverAContextThreeTimesTheDeviceTierAndReusesThePrefix() {
        PrintStream saved = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            QuickStart.main(new String[0]);
        } finally {
            System.setOut(saved);
        }
        String text = out.toString(StandardCharsets.UTF_8);
        // 25 full blocks; the last is left to compute, so 24 blocks = 384 tokens come from the cache
        assertTrue(text.contains("same 400-token prompt found 384 tokens cached"), text);
        assertTrue(text.matches("(?s).*moved [1-9]\\d* bytes up .* and [1-9]\\d* blocks down.*"),
                "the context does not fit the device tier, so blocks moved both ways: " + text);
    }
}
