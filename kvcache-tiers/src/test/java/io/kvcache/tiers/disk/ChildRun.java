package io.kvcache.tiers.disk;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs a child process, reads its output lines to the end and kills it with SIGKILL when the
 * caller says, with every wait bounded.
 *
 * <p>The kill goes through {@link ProcessHandle#destroyForcibly()}, which only sends the
 * signal. ({@link Process#destroyForcibly()} also closes the child's stdout under a reader that
 * may still be in {@code readLine()}: that reader then fails with "Stream closed", and lines the
 * child wrote before it died are lost.) The pipe stays open, so the reader gets every line the
 * child wrote and then end of file.
 *
 * <p>A child that writes nothing for {@code silence} is taken to hang: its thread dump is kept,
 * it is killed, and the result says so. A child that is still making progress (writing lines) is
 * never killed for being slow.
 */
final class ChildRun {
    /** Sees each output line on the reading thread, and may ask for the kill. */
    interface Lines {
        /** Called once the child is started, before its first line. */
        default void started(Control control) {
        }

        void line(String line, Control control);
    }

    /** What a line handler may do. */
    interface Control {
        /** Sends SIGKILL now. */
        void kill();

        /** Sends SIGKILL after {@code millis}, from another thread; the lines keep coming meanwhile. */
        void killAfter(long millis);
    }

    /**
     * @param lines      output lines read, in order
     * @param killed     whether this run sent SIGKILL (asked for, or for a hang)
     * @param hung       whether the child wrote nothing for the silence bound and was killed for it
     * @param exitCode   the child's exit status (137 after SIGKILL), or -1 if it could not be told
     * @param threadDump the hung child's threads, or empty
     * @param stderr     the child's standard error
     */
    record Result(List<String> lines, boolean killed, boolean hung, int exitCode, String threadDump, String stderr) {
        /** @return whether the child died of SIGKILL (128 + 9) */
        boolean diedOfSigkill() {
            return exitCode == 137;
        }
    }

    private ChildRun() {
    }

    /**
     * Runs {@code command} until it exits or is killed and its output is read to the end.
     *
     * @param stderrFile where the child's standard error goes
     * @param silence    how long the child may write nothing before it is taken to hang
     */
    static Result run(List<String> command, Path stderrFile, long silence, TimeUnit unit, Lines handler)
            throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.redirectError(stderrFile.toFile());
        Process p = pb.start();
        ProcessHandle handle = p.toHandle();
        AtomicBoolean killed = new AtomicBoolean();
        AtomicBoolean hung = new AtomicBoolean();
        AtomicLong lastOutput = new AtomicLong(System.nanoTime());
        CountDownLatch readDone = new CountDownLatch(1);
        String[] dump = {""};
        long silenceNanos = unit.toNanos(silence);
        Control control = new Control() {
            @Override
            public void kill() {
                killed.set(true);
                handle.destroyForcibly(); // the signal only: stdout stays open for the reader
            }

            @Override
            public void killAfter(long millis) {
                Thread.ofVirtual().start(() -> {
                    try {
                        if (!p.waitFor(millis, TimeUnit.MILLISECONDS)) {
                            kill();
                        }
                    } catch (InterruptedException e) {
                        kill();
                    }
                });
            }
        };
        Thread watchdog = Thread.ofVirtual().start(() -> {
            try {
                while (!p.waitFor(Math.max(1, silenceNanos / 10), TimeUnit.NANOSECONDS)) {
                    if (System.nanoTime() - lastOutput.get() > silenceNanos) {
                        hung.set(true);
                        dump[0] = threadDump(p.pid());
                        control.kill();
                        break;
                    }
                }
                p.waitFor(silenceNanos, TimeUnit.NANOSECONDS);
                // the child is dead, so the pipe's end of file is due; should the reader still not see
                // it (a grandchild holding the pipe), close the stream under it rather than wait forever
                if (!readDone.await(silenceNanos, TimeUnit.NANOSECONDS)) {
                    killed.set(true);
                    p.getInputStream().close();
                }
            } catch (InterruptedException | IOException e) {
                // the run is over
            }
        });
        List<String> lines = new java.util.ArrayList<>();
        handler.started(control);
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = out.readLine()) != null) {
                lastOutput.set(System.nanoTime());
                lines.add(line);
                handler.line(line, control);
            }
        } catch (IOException e) {
            if (!killed.get()) {
                handle.destroyForcibly();
                throw new IOException("reading the child's output failed before any kill: " + e, e);
            }
            // the stream was closed after the kill: the expected end
        } finally {
            readDone.countDown();
        }
        int exit = -1;
        if (p.waitFor(silence, unit)) {
            exit = p.exitValue();
        } else {
            control.kill();
            if (p.waitFor(silence, unit)) {
                exit = p.exitValue();
            }
        }
        watchdog.interrupt();
        watchdog.join(unit.toMillis(silence));
        String stderr = Files.exists(stderrFile) ? Files.readString(stderrFile) : "";
        return new Result(List.copyOf(lines), killed.get(), hung.get(), exit, dump[0], stderr);
    }

    /** The threads of a JVM, through jcmd, waiting at most 30 s for it. */
    static String threadDump(long pid) {
        Path out = null;
        try {
            out = Files.createTempFile("threads-" + pid, ".txt");
            Process j = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
                    Long.toString(pid), "Thread.print").redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!j.waitFor(30, TimeUnit.SECONDS)) {
                j.destroyForcibly();
                return "(no thread dump: jcmd did not answer within 30 s)";
            }
            return Files.readString(out);
        } catch (IOException e) {
            return "(no thread dump: " + e + ")";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "(no thread dump: interrupted)";
        } finally {
            if (out != null) {
                try {
                    Files.deleteIfExists(out);
                } catch (IOException ignored) {
                    // a temporary file
                }
            }
        }
    }
}
