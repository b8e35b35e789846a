package io.kvcache.examples.demo;

import static org.junit.jupiter.api.Assertions.*;

import io.kvcache.examples.llama.SyntheticCheckpoint;
import io.kvcache.examples.serving.TurnRecord;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * The demo's sessions scenario: returning turns whose history is restored from the host tier and
 * the same turns recomputed with the device tier alone generate identical tokens, and the device
 * tier alone really did recompute (the comparison is not of two equal runs). No timing is asserted.
 */
class SessionsScenarioTest {

    @Test
    void restoredAndRecomputedReturningTurnsGenerateTheSameTokens() {
        SessionsScenario.Result r = SessionsScenario.run(SyntheticCheckpoint.createDefault(), 16, 4);
        assertNull(r.difference(), r.difference());
        assertEquals(r.workload().turns(), r.restored().turns().size());
        assertEquals(r.workload().turns(), r.recomputed().turns().size());
        long restored = SessionsScenario.Result.promptTokensComputed(r.restored());
        long recomputed = SessionsScenario.Result.promptTokensComputed(r.recomputed());
        assertTrue(recomputed > restored, "recomputed " + recomputed + " positions, restored " + restored);
        // the returning turns of the restored run found their history: most of it below the device tier
        long fromHost = r.restored().turns().stream().filter(TurnRecord::returning)
                .mapToLong(t -> t.cachedBlocksPerTier()[1]).sum();
        assertTrue(fromHost > 0, "no returning turn found its history in the host tier");
        for (TurnRecord t : r.recomputed().turns()) {
            assertEquals(1, t.cachedBlocksPerTier().length, "the recomputing run has the device tier alone");
        }

        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        assertTrue(SessionsScenario.print(new PrintStream(buf, true, StandardCharsets.UTF_8), r));
        String out = buf.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("returning-turn TTFT p50: restored from the host tier")
                && out.contains("generate the same tokens: yes"), out);
    }
}
