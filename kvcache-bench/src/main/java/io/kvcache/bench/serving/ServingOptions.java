package io.kvcache.bench.serving;

import io.kvcache.examples.gpu.ModelShape;
import io.kvcache.examples.serving.Workload;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * The serving benchmark's command line. Every flag takes its value as the next argument or after
 * {@code =}. Budgets left unset are chosen from the workload (see {@link ServingBenchmark}).
 */
public final class ServingOptions {
    static final String USAGE = """
            usage: ServingBenchmark [options]
              --platform cpu|gpu      the CPU engine (default) or the GPU engine on CUDA device 0 with a
                                      CUDA device tier, a pinned host tier and batched CUDA copies
              --model PATH            llama2.c checkpoint (default: the embedded synthetic model on the cpu,
                                      synthetic weights of --shape on the gpu)
              --shape NAME            gpu: synthetic bf16 weights of llama3-8b (default) or llama3-70b-slice:N
              --precision bf16|fp32   gpu with --model: the engine's number format (default bf16)
              --max-prefill-rows N    gpu: most prompt positions of one forward pass (default 16384)
              --users N               conversations (default: 32)
              --rounds N              rounds per conversation (default: 6)
              --system-tokens N       shared system prompt (default: 64)
              --context-tokens N      each user's own context, sent in the first round (default: 192)
              --question-tokens N     tokens per question (default: 32)
              --answer-tokens N       tokens generated per answer (default: 16)
              --concurrency N         requests served at once (default: 2)
              --arrival-rate F        0 = closed loop (default); > 0 = Poisson arrivals, turns per second
              --seed N                seeds prompts and arrivals (default: 1)
              --block-tokens N        tokens per KV block (default: 16)
              --device-blocks N       device budget of configurations 1-3 (default: the running requests'
                                      longest contexts, concurrency x max context, + 2)
              --host-blocks N         host tier of configurations 2-3 (default: half the users' KV)
              --disk-blocks N         disk tier of configuration 3 (default: twice the users' KV)
              --disk-dir DIR          where the disk tier's files go (default: a temporary directory, removed)
              --configs 1,2,3,4       configurations to run (default: all); 1 is the baseline of the ratios
              --markdown FILE.md      write the results as Markdown
              --report FILE.html      write a self-contained HTML report with plots
              --no-progress           no progress bar
              --help                  this text""";

    private static final Set<String> VALUE_FLAGS = Set.of("--platform", "--shape", "--precision", "--max-prefill-rows", "--model", "--users", "--rounds", "--system-tokens",
            "--context-tokens", "--question-tokens", "--answer-tokens", "--concurrency", "--arrival-rate", "--seed", "--block-tokens",
            "--device-blocks", "--host-blocks", "--disk-blocks", "--disk-dir", "--configs", "--markdown", "--report");

    /** Where the engine runs. */
    enum Platform { CPU, GPU }

    Platform platform = Platform.CPU;
    String shape;
    String precision;
    int maxPrefillRows = 16384;
    Path model;
    int users = 32;
    int rounds = 6;
    int systemTokens = 64;
    int contextTokens = 192;
    int questionTokens = 32;
    int answerTokens = 16;
    int concurrency = 2;
    double arrivalRate;
    long seed = 1;
    int blockTokens = 16;
    Integer deviceBlocks;
    Integer hostBlocks;
    Integer diskBlocks;
    Path diskDir;
    Set<ServingConfig> configs = EnumSet.allOf(ServingConfig.class);
    Path markdown;
    Path report;
    boolean progress = true;
    boolean help;
    /** The command line as given, for the reports. */
    String commandLine = "";

    /**
     * @param args the command line
     * @return the options
     * @throws IllegalArgumentException naming the bad flag or value
     */
    public static ServingOptions parse(String... args) {
        ServingOptions o = new ServingOptions();
        o.commandLine = String.join(" ", args);
        for (int i = 0; i < args.length; i++) {
            String flag = args[i];
            String value = null;
            int eq = flag.indexOf('=');
            if (flag.startsWith("--") && eq > 0) {
                value = flag.substring(eq + 1);
                flag = flag.substring(0, eq);
            }
            if (VALUE_FLAGS.contains(flag) && value == null) {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(flag + " needs a value");
                }
                value = args[++i];
            } else if (!VALUE_FLAGS.contains(flag) && value != null) {
                throw new IllegalArgumentException(flag + " takes no value");
            }
            switch (flag) {
                case "--help", "-h" -> o.help = true;
                case "--no-progress" -> o.progress = false;
                case "--platform" -> o.platform = switch (value.trim().toLowerCase(Locale.ROOT)) {
                    case "cpu" -> Platform.CPU;
                    case "gpu" -> Platform.GPU;
                    default -> throw new IllegalArgumentException("--platform expects cpu or gpu; got '" + value + "'");
                };
                case "--shape" -> o.shape = value.trim();
                case "--precision" -> {
                    String v = value.trim().toLowerCase(Locale.ROOT);
                    if (!v.equals("bf16") && !v.equals("fp32")) {
                        throw new IllegalArgumentException("--precision expects bf16 or fp32; got '" + value + "'");
                    }
                    o.precision = v;
                }
                case "--max-prefill-rows" -> o.maxPrefillRows = intIn(flag, value, 1, 1 << 20);
                case "--model" -> o.model = Path.of(value);
                case "--users" -> o.users = intIn(flag, value, 1, 1 << 20);
                case "--rounds" -> o.rounds = intIn(flag, value, 1, 1 << 16);
                case "--system-tokens" -> o.systemTokens = intIn(flag, value, 0, 1 << 24);
                case "--context-tokens" -> o.contextTokens = intIn(flag, value, 0, 1 << 24);
                case "--question-tokens" -> o.questionTokens = intIn(flag, value, 1, 1 << 24);
                case "--answer-tokens" -> o.answerTokens = intIn(flag, value, 1, 1 << 24);
                case "--concurrency" -> o.concurrency = intIn(flag, value, 1, 1 << 16);
                case "--arrival-rate" -> o.arrivalRate = rate(flag, value);
                case "--seed" -> o.seed = longOf(flag, value);
                case "--block-tokens" -> o.blockTokens = intIn(flag, value, 1, 4096);
                case "--device-blocks" -> o.deviceBlocks = intIn(flag, value, 3, Integer.MAX_VALUE);
                case "--host-blocks" -> o.hostBlocks = intIn(flag, value, 1, Integer.MAX_VALUE);
                case "--disk-blocks" -> o.diskBlocks = intIn(flag, value, 1, Integer.MAX_VALUE);
                case "--disk-dir" -> o.diskDir = Path.of(value);
                case "--configs" -> o.configs = ServingConfig.parseList(value);
                case "--markdown" -> o.markdown = Path.of(value);
                case "--report" -> o.report = Path.of(value);
                default -> throw new IllegalArgumentException(flag.startsWith("-")
                        ? "unknown option " + flag + " (--help lists the options)"
                        : "unexpected argument '" + flag + "' (--help lists the options)");
            }
        }
        o.checkPlatform();
        return o;
    }

    /** Refuses flags of the other platform, and a shape together with a checkpoint. */
    private void checkPlatform() {
        if (platform == Platform.CPU) {
            if (shape != null) {
                throw new IllegalArgumentException("--shape needs --platform gpu (the cpu engine runs a checkpoint)");
            }
            if (precision != null) {
                throw new IllegalArgumentException("--precision needs --platform gpu (the cpu engine runs fp32)");
            }
            return;
        }
        if (shape != null && model != null) {
            throw new IllegalArgumentException("--shape and --model both given: synthetic weights of a shape, or a checkpoint");
        }
        if (precision != null && model == null) {
            throw new IllegalArgumentException("--precision needs --model: synthetic weights of a shape are bf16");
        }
        if (shape != null) {
            ModelShape.named(shape);   // an unknown name fails here, before any device is touched
        }
    }

    /** @return the workload the options describe */
    public Workload workload() {
        return new Workload(users, rounds, systemTokens, contextTokens, questionTokens, answerTokens, concurrency, arrivalRate, seed);
    }

    private static int intIn(String flag, String v, int min, int max) {
        long n = longOf(flag, v);
        if (n < min || n > max) {
            throw new IllegalArgumentException(flag + " must be between " + min + " and " + max + "; got " + v);
        }
        return (int) n;
    }

    private static long longOf(String flag, String v) {
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(flag + " expects a whole number; got '" + v + "'");
        }
    }

    private static double rate(String flag, String v) {
        double r;
        try {
            r = Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(flag + " expects a number >= 0; got '" + v + "'");
        }
        if (!(r >= 0) || Double.isInfinite(r)) {
            throw new IllegalArgumentException(flag + " expects a number >= 0; got '" + v + "'");
        }
        return r;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "users=%d rounds=%d system=%d context=%d question=%d answer=%d concurrency=%d "
                + "rate=%s", users, rounds, systemTokens, contextTokens, questionTokens, answerTokens, concurrency, arrivalRate);
    }
}
