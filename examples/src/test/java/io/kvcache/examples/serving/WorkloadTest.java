package io.kvcache.examples.serving;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The workload's prompts are reproducible and distinct, its sizes add up, and bad shapes are refused by name. */
class WorkloadTest {
    private final Workload w = new Workload(4, 3, 40, 24, 8, 5, 2, 0, 9);

    @Test
    void promptsAreTheSameEveryTimeAndDifferBetweenUsersAndRounds() {
        assertArrayEquals(w.question(1, 2, 512), w.question(1, 2, 512));
        assertFalse(Arrays.equals(w.question(1, 2, 512), w.question(2, 2, 512)));
        assertFalse(Arrays.equals(w.question(1, 1, 512), w.question(1, 2, 512)));
        assertFalse(Arrays.equals(w.userContext(0, 512), w.userContext(1, 512)));
        int[] system = w.systemPrompt(512);
        assertEquals(40, system.length);
        assertEquals(1, system[0], "the system prompt starts with BOS");
        for (int t : w.userContext(3, 512)) {
            assertTrue(t >= 3 && t < 512, "token " + t + " is a special or outside the vocabulary");
        }
        assertFalse(Arrays.equals(w.question(0, 0, 512), new Workload(4, 3, 40, 24, 8, 5, 2, 0, 10).question(0, 0, 512)),
                "the seed changes the prompts");
    }

    @Test
    void sizesCountTheSharedSystemPromptOnce() {
        assertEquals(40 + 24 + 3 * (8 + 5), w.maxContextTokens());
        assertEquals(12, w.turns());
        // 103 tokens = 13 blocks of 8 per user, the first 5 (the system prompt's full blocks) shared
        assertEquals(5 + 4 * (13 - 5), w.uniqueKvBlocks(8));
        assertFalse(w.poisson());
        assertTrue(new Workload(4, 3, 40, 24, 8, 5, 2, 1.5, 9).poisson());
    }

    @Test
    void badShapesAreRefusedByName() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Workload(0, 3, 40, 24, 8, 5, 2, 0, 9))
                .getMessage().contains("users"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Workload(4, 3, -1, 24, 8, 5, 2, 0, 9))
                .getMessage().contains("system prompt"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Workload(4, 3, 40, -2, 8, 5, 2, 0, 9))
                .getMessage().contains("context"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Workload(4, 3, 40, 24, 8, 0, 2, 0, 9))
                .getMessage().contains("answer"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> new Workload(4, 3, 40, 24, 8, 5, 2, Double.NaN, 9)).getMessage().contains("arrival rate"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> w.question(0, 0, 3))
                .getMessage().contains("no plain tokens"));
    }
}
