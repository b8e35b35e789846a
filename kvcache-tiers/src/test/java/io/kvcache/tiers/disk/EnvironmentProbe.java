package io.kvcache.tiers.disk;

import java.nio.file.Path;

/**
 * A child process for {@link JvmEnvironmentTest}: opens a disk tier in the given directory,
 * stores and closes, and prints {@code OPENED}, {@code REFUSED <message>}
 * (flags missing) or {@code NO-CHRONICLE <message>} (Chronicle Map not on the class path).
 */
public final class EnvironmentProbe {
    private EnvironmentProbe() {
    }

    public static void main(String[] args) {
        try (MappedFileTier t = MappedFileTier.builder(TestBlocks.SMALL).directory(Path.of(args[0]))
                .modelId(TestBlocks.MODEL).capacityBytes(4 * TestBlocks.SMALL.blockBytes()).open()) {
            int slot = t.allocate();
            t.write(slot, 0, java.lang.foreign.Arena.ofAuto().allocate(t.slotBytes()));
            t.publish(slot, TestBlocks.key(1));
            t.free(slot);
            System.out.println("OPENED analytics.disable=" + System.getProperty("chronicle.analytics.disable"));
        } catch (ChronicleMapMissingException e) {
            System.out.println("NO-CHRONICLE " + e.getMessage());
        } catch (IllegalStateException e) {
            System.out.println("REFUSED " + e.getMessage());
        }
    }
}
