package io.kvcache.examples.demo;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress bar redrawn in place on a terminal (at most ten times a second); when the
 * stream is not a terminal, one plain line per tenth of the work instead.
 */
public final class ProgressBar {
    private static final int WIDTH = 30;
    private static final long REDRAW_NANOS = 100_000_000L;

    private final PrintStream out;
    private final String label;
    private final boolean terminal;
    private final long start = System.nanoTime();
    private long lastDraw;
    private int lastTenth = -1;
    private int lastLength;

    /**
     * @param out      where to draw
     * @param label    what is progressing
     * @param terminal whether {@code out} is a terminal (redraw in place)
     */
    public ProgressBar(PrintStream out, String label, boolean terminal) {
        this.out = out;
        this.label = label;
        this.terminal = terminal;
    }

    /** @return whether standard error is a terminal */
    public static boolean stderrIsTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    /**
     * @param done   units done
     * @param total  units in all
     * @param detail extra text after the counts (e.g. tier occupancy), may be empty
     */
    public void update(int done, int total, String detail) {
        long now = System.nanoTime();
        if (terminal) {
            if (done < total && now - lastDraw < REDRAW_NANOS) {
                return;
            }
            lastDraw = now;
            String line = line(done, total, now, detail);
            String pad = line.length() < lastLength ? " ".repeat(lastLength - line.length()) : "";
            lastLength = line.length();
            out.print('\r' + line + pad);
            out.flush();
        } else {
            int tenth = total == 0 ? 10 : (int) (10L * done / total);
            if (tenth != lastTenth) {
                lastTenth = tenth;
                out.println(line(done, total, now, detail));
            }
        }
    }

    /** Ends the bar's line. */
    public void finish() {
        if (terminal && lastLength > 0) {
            out.println();
        }
    }

    private String line(int done, int total, long now, String detail) {
        double frac = total == 0 ? 1.0 : Math.min(1.0, done / (double) total);
        int filled = (int) Math.round(frac * WIDTH);
        double secs = (now - start) / 1e9;
        double rate = secs > 0 ? done / secs : 0;
        return String.format(Locale.ROOT, "%s [%s%s] %3.0f%% %d/%d tok  %.0f tok/s%s", label, "#".repeat(filled),
                ".".repeat(WIDTH - filled), frac * 100, done, total, rate, detail.isEmpty() ? "" : "  " + detail);
    }
}
