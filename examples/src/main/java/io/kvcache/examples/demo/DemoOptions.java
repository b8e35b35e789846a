package io.kvcache.examples.demo;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * The demo's command line. Every flag takes its value as the next argument or after {@code =}.
 * Budgets left unset are chosen from the final KV size so that blocks move between all tiers.
 */
public final class DemoOptions {
    /** Which eviction policy the cache uses. */
    public enum Policy { LRU, ATTENTION }

    /** Where the device tier lives. */
    public enum Device { AUTO, SIMULATED, CUDA }

    /** Which forward pass runs: the fp32 CPU model with paged attention, or the GPU engine. */
    public enum Engine { CPU, GPU }

    static final String USAGE = """
            usage: java -jar long-context-demo.jar [options]
              --model PATH           llama2.c checkpoint (default: an embedded synthetic model, no download)
              --prompt-ids 1,2,3     prompt token ids (default: 1, BOS)
              --tokens N             tokens to generate (default: 1024)
              --temperature F        0 = greedy (default); > 0 samples from softmax(logits / F)
              --seed N               sampling seed (default: 1)
              --emit-tokens FILE     write the generated token ids, one per line
              --device-budget BYTES  device tier size, e.g. 1MiB (default: an eighth of the final KV)
              --host-budget BYTES    host tier size (default: a quarter of the final KV with a disk tier, else all of it)
              --disk-dir DIR         directory of the persistent disk tier; run twice to see restart reuse
                                     (default: a temporary directory, removed at exit)
              --no-disk              no disk tier
              --disk-budget BYTES    disk tier size (default: 256MiB, or twice the final KV if larger)
              --block-tokens N       tokens per KV block (default: 16)
              --policy lru|attention eviction policy (default: lru); attention reports attention mass per block
              --device cuda|simulated  where the device tier lives (default: cuda with a GPU, else simulated)
              --engine cpu|gpu       forward pass: the CPU model over paged attention (default), or the GPU
                                     engine (needs --device cuda; greedy; the sequence must fit the device tier)
              --precision fp32|bf16  number format of --engine gpu (default: fp32, the CPU's tokens)
              --followup-tokens N    tokens of the prefix-reuse request (default: 32; 0 skips it)
              --sessions N           users of the sessions scenario: returning turns restored vs recomputed
                                     (default: 4; 0 skips it)
              --no-verify            skip the second decode with an unlimited device budget
              --report FILE.html     write a self-contained HTML report with plots
              --no-progress          no progress bar
              --metrics-port N       serve the cache's counters for Prometheus at http://127.0.0.1:N/metrics
                                     while the demo runs (0: any free port, printed)
              --help                 this text
            sizes take B, KiB, MiB, GiB suffixes.""";

    private static final java.util.Set<String> VALUE_FLAGS = java.util.Set.of("--model", "--prompt-ids", "--tokens",
            "--temperature", "--seed", "--emit-tokens", "--device-budget", "--host-budget", "--disk-dir",
            "--disk-budget", "--block-tokens", "--followup-tokens", "--report", "--policy", "--device", "--engine",
            "--precision", "--metrics-port", "--sessions");

    Path model;
    int[] promptIds = {1};
    int tokens = 1024;
    float temperature = 0.0f;
    long seed = 1;
    Path emitTokens;
    Long deviceBudget;
    Long hostBudget;
    Path diskDir;
    Long diskBudget;
    int blockTokens = 16;
    Policy policy = Policy.LRU;
    Device device = Device.AUTO;
    Engine engine = Engine.CPU;
    io.kvcache.examples.gpu.Precision precision = io.kvcache.examples.gpu.Precision.FP32;
    int followupTokens = 32;
    int sessions = 4;
    boolean verify = true;
    Path report;
    boolean progress = true;
    boolean noDisk;
    boolean help;
    /** null: no metrics endpoint */
    Integer metricsPort;

    /**
     * @param args the command line
     * @return the options
     * @throws UsageException naming the bad flag or value
     */
    public static DemoOptions parse(String... args) throws UsageException {
        DemoOptions o = new DemoOptions();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            String flag = arg;
            String value = null;
            int eq = arg.indexOf('=');
            if (arg.startsWith("--") && eq > 0) {
                flag = arg.substring(0, eq);
                value = arg.substring(eq + 1);
            }
            if (VALUE_FLAGS.contains(flag) && value == null) {
                value = next(args, ++i, flag);
            } else if (!VALUE_FLAGS.contains(flag) && value != null) {
                throw new UsageException(flag + " takes no value");
            }
            switch (flag) {
                case "--help", "-h" -> o.help = true;
                case "--no-verify" -> o.verify = false;
                case "--no-progress" -> o.progress = false;
                case "--no-disk" -> o.noDisk = true;
                case "--model" -> o.model = Path.of(value);
                case "--prompt-ids" -> o.promptIds = ids(flag, value);
                case "--tokens" -> o.tokens = intIn(flag, value, 0, 1 << 24);
                case "--temperature" -> o.temperature = temperature(flag, value);
                case "--seed" -> o.seed = longOf(flag, value);
                case "--emit-tokens" -> o.emitTokens = Path.of(value);
                case "--device-budget" -> o.deviceBudget = ByteSize.parse(flag, value);
                case "--host-budget" -> o.hostBudget = ByteSize.parse(flag, value);
                case "--disk-dir" -> o.diskDir = Path.of(value);
                case "--disk-budget" -> o.diskBudget = ByteSize.parse(flag, value);
                case "--block-tokens" -> o.blockTokens = intIn(flag, value, 1, 4096);
                case "--followup-tokens" -> o.followupTokens = intIn(flag, value, 0, 1 << 20);
                case "--sessions" -> o.sessions = intIn(flag, value, 0, 1024);
                case "--report" -> o.report = Path.of(value);
                case "--metrics-port" -> o.metricsPort = intIn(flag, value, 0, 65535);
                case "--policy" -> o.policy = switch (lower(value)) {
                    case "lru" -> Policy.LRU;
                    case "attention" -> Policy.ATTENTION;
                    default -> throw new UsageException("--policy expects lru or attention; got '" + value + "'");
                };
                case "--device" -> o.device = switch (lower(value)) {
                    case "cuda" -> Device.CUDA;
                    case "simulated" -> Device.SIMULATED;
                    default -> throw new UsageException("--device expects cuda or simulated; got '" + value + "'");
                };
                case "--engine" -> o.engine = switch (lower(value)) {
                    case "cpu" -> Engine.CPU;
                    case "gpu" -> Engine.GPU;
                    default -> throw new UsageException("--engine expects cpu or gpu; got '" + value + "'");
                };
                case "--precision" -> o.precision = switch (lower(value)) {
                    case "fp32" -> io.kvcache.examples.gpu.Precision.FP32;
                    case "bf16" -> io.kvcache.examples.gpu.Precision.BF16;
                    default -> throw new UsageException("--precision expects fp32 or bf16; got '" + value + "'");
                };
                default -> throw new UsageException(arg.startsWith("-")
                        ? "unknown option " + flag + " (--help lists the options)"
                        : "unexpected argument '" + arg + "' (--help lists the options)");
            }
        }
        return o;
    }

    private static String lower(String s) {
        return s.toLowerCase(Locale.ROOT).trim();
    }

    private static String next(String[] args, int i, String flag) throws UsageException {
        if (i >= args.length || (args[i].startsWith("--") && args[i].length() > 2)) {
            throw new UsageException(flag + " needs a value");
        }
        return args[i];
    }

    private static int intIn(String flag, String v, int min, int max) throws UsageException {
        long n = longOf(flag, v);
        if (n < min || n > max) {
            throw new UsageException(flag + " must be between " + min + " and " + max + "; got " + v);
        }
        return (int) n;
    }

    private static long longOf(String flag, String v) throws UsageException {
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " expects a whole number; got '" + v + "'");
        }
    }

    private static float temperature(String flag, String v) throws UsageException {
        float t;
        try {
            t = Float.parseFloat(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " expects a number >= 0; got '" + v + "'");
        }
        if (!(t >= 0) || Float.isInfinite(t)) {
            throw new UsageException(flag + " expects a number >= 0; got '" + v + "'");
        }
        return t;
    }

    private static int[] ids(String flag, String v) throws UsageException {
        String[] parts = v.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new UsageException(flag + " expects comma-separated token ids such as 1,2,3; got '" + v + "'");
            }
            if (out[i] < 0) {
                throw new UsageException(flag + ": token id " + out[i] + " is negative");
            }
        }
        if (out.length == 0) {
            throw new UsageException(flag + " needs at least one token id");
        }
        return out;
    }

    @Override
    public String toString() {
        return "model=" + (model == null ? "embedded" : model) + " prompt=" + Arrays.toString(promptIds)
                + " tokens=" + tokens + " temperature=" + temperature + " seed=" + seed + " policy=" + policy;
    }
}
