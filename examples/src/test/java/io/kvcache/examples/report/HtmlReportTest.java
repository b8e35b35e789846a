package io.kvcache.examples.report;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class HtmlReportTest {

    @Test
    void pageIsSelfContainedAndEscapesWhatItEmbeds() {
        StepTrace t = new StepTrace(16, List.of("dev</script><b>", "host"), new int[] {4, 8});
        for (int i = 0; i < 5; i++) {
            t.add(i, 1_000_000L * (i + 1), new int[] {i, 2 * i}, 4096L * i, 2048L * i, 500_000L);
        }
        String page = HtmlReport.render("t <1>", "s & s", List.of(new HtmlReport.Row("a<b", "c\"d")), t);
        assertFalse(page.contains("http://") && page.replace("http://www.w3.org/2000/svg", "").contains("http://"),
                "no URL but the SVG namespace");
        assertFalse(page.contains("https://"));
        assertFalse(page.contains("src="), "no external script or image");
        assertTrue(page.contains("<h1>t &lt;1&gt;</h1>"), "title escaped");
        assertTrue(page.contains("<th>a&lt;b</th><td>c&quot;d</td>"), "summary escaped");
        assertTrue(page.contains("\"name\":\"dev\\u003c/script\\u003e\\u003cb\\u003e\""), "tier name escaped in JSON");
        assertTrue(page.contains("\"latencyMs\":[1.000,2.000,3.000,4.000,5.000]"), page);
        assertTrue(page.contains("\"used\":[0,2,4,6,8]"), page);
    }
}
