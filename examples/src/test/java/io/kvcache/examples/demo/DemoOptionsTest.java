package io.kvcache.examples.demo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class DemoOptionsTest {

    @Test
    void defaultsAreBosPromptGreedyLruWithVerification() throws Exception {
        DemoOptions o = DemoOptions.parse();
        assertArrayEquals(new int[] {1}, o.promptIds);
        assertEquals(0.0f, o.temperature);
        assertEquals(DemoOptions.Policy.LRU, o.policy);
        assertTrue(o.verify);
        assertEquals(null, o.deviceBudget);
    }

    @Test
    void engineAndPrecisionAreReadAndCheckedByName() throws Exception {
        assertEquals(DemoOptions.Engine.CPU, DemoOptions.parse().engine);
        DemoOptions o = DemoOptions.parse("--engine", "GPU", "--precision=bf16");
        assertEquals(DemoOptions.Engine.GPU, o.engine);
        assertEquals(io.kvcache.examples.gpu.Precision.BF16, o.precision);
        UsageException e = assertThrows(UsageException.class, () -> DemoOptions.parse("--engine", "tpu"));
        assertTrue(e.getMessage().contains("--engine expects cpu or gpu"), e.getMessage());
        e = assertThrows(UsageException.class, () -> DemoOptions.parse("--precision", "fp8"));
        assertTrue(e.getMessage().contains("--precision expects fp32 or bf16"), e.getMessage());
    }

    @Test
    void everyFlagIsReadInBothSpellings() throws Exception {
        DemoOptions o = DemoOptions.parse("--model", "m.bin", "--prompt-ids=1, 2,3", "--tokens", "7", "--temperature=0.8",
                "--seed", "99", "--emit-tokens", "t.txt", "--device-budget", "64KiB", "--host-budget=1.5MiB",
                "--disk-dir", "d", "--disk-budget", "2GiB", "--block-tokens", "8", "--policy", "Attention",
                "--device", "simulated", "--followup-tokens", "0", "--no-verify", "--report", "r.html", "--no-progress",
                "--remote-tier=redis://u:p@h:6380");
        assertEquals(Path.of("m.bin"), o.model);
        assertArrayEquals(new int[] {1, 2, 3}, o.promptIds);
        assertEquals(7, o.tokens);
        assertEquals(0.8f, o.temperature);
        assertEquals(99, o.seed);
        assertEquals(Path.of("t.txt"), o.emitTokens);
        assertEquals(64 * 1024, o.deviceBudget);
        assertEquals(3 * 512 * 1024, o.hostBudget);
        assertEquals(Path.of("d"), o.diskDir);
        assertEquals(2L << 30, o.diskBudget);
        assertEquals(8, o.blockTokens);
        assertEquals(DemoOptions.Policy.ATTENTION, o.policy);
        assertEquals(DemoOptions.Device.SIMULATED, o.device);
        assertEquals(0, o.followupTokens);
        assertFalse(o.verify);
        assertFalse(o.progress);
        assertEquals(Path.of("r.html"), o.report);
        assertEquals("redis://u:p@h:6380", o.remoteTier);
    }

    @Test
    void badValuesNameTheFlag() {
        assertMessage("unknown option --frobnicate", "--frobnicate");
        assertMessage("--tokens expects a whole number", "--tokens", "many");
        assertMessage("--tokens must be between", "--tokens", "-3");
        assertMessage("--device-budget expects bytes", "--device-budget", "lots");
        assertMessage("--device-budget must be a positive size", "--device-budget", "0");
        assertMessage("--policy expects lru or attention", "--policy", "fifo");
        assertMessage("--device expects cuda or simulated", "--device", "tpu");
        assertMessage("--prompt-ids expects comma-separated", "--prompt-ids", "1,x");
        assertMessage("--temperature expects a number >= 0", "--temperature", "-1");
        assertMessage("--model needs a value", "--model");
        assertMessage("--seed needs a value", "--seed", "--tokens", "3");
        assertMessage("--no-verify takes no value", "--no-verify=yes");
        assertMessage("unexpected argument 'stray'", "stray");
    }

    @Test
    void byteSizesTakeBinarySuffixes() throws Exception {
        assertEquals(4096, ByteSize.parse("f", "4096"));
        assertEquals(512 * 1024, ByteSize.parse("f", "512KiB"));
        assertEquals(3L << 20, ByteSize.parse("f", "3 MiB"));
        assertEquals(1L << 30, ByteSize.parse("f", "1g"));
        assertEquals("1.5 MiB", ByteSize.format(3 << 19));
        assertEquals("100 B", ByteSize.format(100));
    }

    private static void assertMessage(String expected, String... args) {
        UsageException e = assertThrows(UsageException.class, () -> DemoOptions.parse(args));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }
}
