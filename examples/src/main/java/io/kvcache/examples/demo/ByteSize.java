package io.kvcache.examples.demo;

import java.util.Locale;

/** Byte counts written with an optional binary suffix: {@code 4096}, {@code 64KiB}, {@code 1.5 MiB}, {@code 2GiB}. */
public final class ByteSize {
    private ByteSize() {
    }

    /**
     * @param flag names the flag in the message
     * @param text the value
     * @return bytes, positive
     * @throws UsageException naming the flag for anything else
     */
    public static long parse(String flag, String text) throws UsageException {
        String t = text.trim();
        long unit = 1;
        String lower = t.toLowerCase(Locale.ROOT);
        String[][] suffixes = {{"kib", "1024"}, {"mib", "1048576"}, {"gib", "1073741824"}, {"tib", "1099511627776"},
                {"k", "1024"}, {"m", "1048576"}, {"g", "1073741824"}, {"b", "1"}};
        for (String[] s : suffixes) {
            if (lower.endsWith(s[0])) {
                unit = Long.parseLong(s[1]);
                t = t.substring(0, t.length() - s[0].length()).trim();
                break;
            }
        }
        double value;
        try {
            value = Double.parseDouble(t);
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " expects bytes such as 4096, 512KiB, 64MiB or 2GiB; got '" + text + "'");
        }
        double bytes = value * unit;
        if (!(bytes >= 1) || bytes > Long.MAX_VALUE / 2 || Double.isNaN(bytes)) {
            throw new UsageException(flag + " must be a positive size; got '" + text + "'");
        }
        return (long) bytes;
    }

    /** @return bytes in the largest binary unit that keeps a value of at least 1, e.g. {@code 1.5 MiB} */
    public static String format(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = 0;
        while (Math.abs(v) >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(Locale.ROOT, v >= 100 ? "%.0f %s" : "%.1f %s", v, units[u]);
    }
}
