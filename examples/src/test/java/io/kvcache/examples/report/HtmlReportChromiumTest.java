package io.kvcache.examples.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kvcache.examples.demo.LongContextDemo;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Opens the demo's HTML report in headless Chromium (no network, fresh profile) and checks that
 * its script drew the plots: the rendered DOM holds one SVG path per series with every step in
 * it, and a screenshot holds pixels of the series colours. Skipped where Chromium is absent.
 */
class HtmlReportChromiumTest {
    private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    private static final int TOKENS = 96;

    @TempDir
    static Path dir;
    static Path report;

    @BeforeAll
    static void writeReportOfARealDecode() {
        assumeTrue(Files.isExecutable(CHROMIUM), "chromium absent: " + CHROMIUM);
        report = dir.resolve("report.html");
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        int status = LongContextDemo.run(new String[] {"--tokens", Integer.toString(TOKENS), "--device-budget",
                "384KiB", "--followup-tokens", "0", "--no-verify", "--no-progress", "--report", report.toString()},
                quiet, quiet);
        assertEquals(0, status);
    }

    @Test
    void scriptDrawsThreePlotsWithEveryStep() throws Exception {
        String dom = chromium("--dump-dom", report.toUri().toString());
        assertTrue(dom.contains("data-plots-drawn=\"3\""), "plots drawn marker missing");
        Matcher m = Pattern.compile("<path [^>]*class=\"series\"[^>]*>").matcher(dom);
        List<String> paths = new ArrayList<>();
        while (m.find()) {
            paths.add(m.group());
        }
        // tiers device + host + (temporary) disk + context line, step + wait latency, up + down bytes
        assertEquals(8, paths.size(), String.join("\n", paths));
        for (String p : paths) {
            assertTrue(p.contains("data-points=\"" + TOKENS + "\""), p);
            Matcher d = Pattern.compile(" d=\"([^\"]*)\"").matcher(p);
            assertTrue(d.find(), p);
            assertEquals(TOKENS - 1, d.group(1).chars().filter(c -> c == 'L').count(), "segments of " + p);
        }
    }

    @Test
    void screenshotShowsTheSeriesColours() throws Exception {
        Path png = dir.resolve("shot.png");
        chromium("--window-size=1000,1400", "--screenshot=" + png, report.toUri().toString());
        BufferedImage img = ImageIO.read(png.toFile());
        int red = 0;
        int blue = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int rgb = img.getRGB(x, y);
                if (near(rgb, 0xd6, 0x27, 0x28)) {
                    red++;
                }
                if (near(rgb, 0x1f, 0x77, 0xb4)) {
                    blue++;
                }
            }
        }
        // a legend swatch alone is 36 pixels; drawn lines across the plot give hundreds
        assertTrue(red > 500 && blue > 500, "series pixels: red " + red + ", blue " + blue);
    }

    private static boolean near(int rgb, int r, int g, int b) {
        return Math.abs(((rgb >> 16) & 0xff) - r) < 40 && Math.abs(((rgb >> 8) & 0xff) - g) < 40
                && Math.abs((rgb & 0xff) - b) < 40;
    }

    private static String chromium(String... args) throws Exception {
        Path profile = Files.createTempDirectory(dir, "profile");
        List<String> cmd = new ArrayList<>(List.of(CHROMIUM.toString(), "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + profile));
        cmd.addAll(List.of(args));
        Path stdout = dir.resolve("chromium.out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).redirectOutput(stdout.toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("chromium did not finish in 120 s");
        }
        assertEquals(0, p.exitValue(), "chromium exit status");
        return Files.readString(stdout);
    }
}
