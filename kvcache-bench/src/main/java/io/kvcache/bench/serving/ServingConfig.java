package io.kvcache.bench.serving;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/** The configurations compared, all with the same device budget except the last. */
public enum ServingConfig {
    /** The device tier alone: a returning user's evicted KV is recomputed (vLLM V1 on preemption and prefix-cache eviction). */
    DEVICE_ONLY("1 device only (recompute)"),
    /** The device tier and a host tier below it. */
    HOST("2 device + host"),
    /** The device, host and disk tiers. */
    DISK("3 device + host + disk"),
    /** A device tier holding every user's KV: the upper bound. */
    ALL_FIT("4 everything fits");

    private final String label;

    ServingConfig(String label) {
        this.label = label;
    }

    /** @return the label in reports, led by the configuration's number */
    public String label() {
        return label;
    }

    /** @return 1 to 4 */
    public int number() {
        return ordinal() + 1;
    }

    static Set<ServingConfig> parseList(String v) {
        Set<ServingConfig> s = EnumSet.noneOf(ServingConfig.class);
        for (String part : v.split(",")) {
            String p = part.trim().toLowerCase(Locale.ROOT);
            int n;
            try {
                n = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--configs expects numbers 1 to 4 such as 1,2,3; got '" + v + "'");
            }
            if (n < 1 || n > 4) {
                throw new IllegalArgumentException("--configs: no configuration " + n + " (there are 1 to 4)");
            }
            s.add(values()[n - 1]);
        }
        return s;
    }
}
