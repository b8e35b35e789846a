package io.kvcache.redis;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code redis-server} for tests, on 127.0.0.1 at a free port, with a random password, no
 * persistence, in a temporary directory; killed and restarted on demand. Tests that need one are
 * skipped (an assumption fails) where {@code redis-server} is not on the PATH.
 */
final class RedisServer implements AutoCloseable {
    final int port;
    final String password;
    private final Path dir;
    private final List<String> extra;
    private Process process;
    private RedisClient plainClient;
    private StatefulRedisConnection<byte[], byte[]> plain;

    private RedisServer(Path dir, int port, String password, List<String> extra) {
        this.dir = dir;
        this.password = password;
        this.port = port;
        this.extra = extra;
    }

    /** @return whether redis-server is on the PATH */
    static boolean available() {
        for (String p : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(p, "redis-server"))) {
                return true;
            }
        }
        return false;
    }

    /** Starts a server, or skips the test where redis-server is absent. */
    static RedisServer start(String... extraArgs) throws IOException {
        return startWithPassword("pw-" + UUID.randomUUID(), extraArgs);
    }

    /** Starts a server with a given password, or skips the test where redis-server is absent. */
    static RedisServer startWithPassword(String password, String... extraArgs) throws IOException {
        assumeTrue(available(), "redis-server is not on the PATH");
        RedisServer s = new RedisServer(Files.createTempDirectory("kvcache-redis"), freePort(), password,
                List.of(extraArgs));
        s.launch();
        return s;
    }

    /**
     * Starts a server that speaks TLS only, with a self-signed certificate for 127.0.0.1 made by
     * {@code openssl} (skipped where either is absent).
     */
    static RedisServer startTls() throws IOException, InterruptedException {
        assumeTrue(available(), "redis-server is not on the PATH");
        Path certs = Files.createTempDirectory("kvcache-redis-tls");
        Process p = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", certs.resolve("key.pem").toString(), "-out", certs.resolve("cert.pem").toString())
                .redirectErrorStream(true).redirectOutput(certs.resolve("openssl.log").toFile()).start();
        assumeTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, "openssl could not make a certificate");
        int port = freePort();
        RedisServer s = new RedisServer(certs, port, "pw-" + UUID.randomUUID(), List.of("--port", "0", "--tls-port",
                String.valueOf(port), "--tls-cert-file", certs.resolve("cert.pem").toString(), "--tls-key-file",
                certs.resolve("key.pem").toString(), "--tls-ca-cert-file", certs.resolve("cert.pem").toString(),
                "--tls-auth-clients", "no"));
        s.launch();
        return s;
    }

    static int freePort() throws IOException {
        try (ServerSocket ss = new ServerSocket(0)) {
            ss.setReuseAddress(true);
            return ss.getLocalPort();
        }
    }

    private void launch() throws IOException {
        List<String> cmd = new ArrayList<>(List.of("redis-server", "--bind", "127.0.0.1", "--port",
                String.valueOf(port), "--requirepass", password, "--save", "", "--appendonly", "no", "--dir",
                dir.toString(), "--protected-mode", "yes", "--loglevel", "warning"));
        cmd.addAll(extra);
        process = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("redis-" + port + ".log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IOException("redis-server exited with " + process.exitValue() + ": "
                        + Files.readString(dir.resolve("redis-" + port + ".log")));
            }
            try (Socket ignored = new Socket("127.0.0.1", port)) {
                return;
            } catch (IOException notYet) {
                sleep(20);
            }
        }
        throw new IOException("redis-server did not listen on " + port + " within 30 s");
    }

    /** @return a tier configuration for this server with a fresh or given namespace */
    RedisTierConfig.Builder config(String namespace) {
        return RedisTierConfig.builder().node("127.0.0.1", port).password(password.toCharArray())
                .namespace(namespace).timeout(Duration.ofSeconds(2)).presenceTtl(Duration.ofMillis(200));
    }

    /** @return a redis:// URI with the password */
    String uri() {
        return "redis://:" + password + "@127.0.0.1:" + port;
    }

    /** Stops the server (SIGSTOP): it keeps its connections but answers nothing, as a hung host would. */
    void pause() throws IOException, InterruptedException {
        signal("STOP");
    }

    /** Lets a paused server go on (SIGCONT). */
    void resume() throws IOException, InterruptedException {
        signal("CONT");
    }

    private void signal(String sig) throws IOException, InterruptedException {
        Process k = new ProcessBuilder("kill", "-" + sig, String.valueOf(process.pid())).inheritIO().start();
        if (!k.waitFor(30, TimeUnit.SECONDS) || k.exitValue() != 0) {
            throw new IOException("kill -" + sig + " " + process.pid() + " failed");
        }
    }

    Path dir() {
        return dir;
    }

    /** Kills the server at once (SIGKILL), as a crash would. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** Starts it again on the same port (empty: nothing is saved). */
    void restart() throws IOException {
        launch();
    }

    /**
     * @return a plain Lettuce connection to this server (byte arrays), for a test to read and write
     *     raw values beside a tier; made on first use, closed with the server
     */
    synchronized StatefulRedisConnection<byte[], byte[]> plainConnection() {
        if (plain == null) {
            plainClient = RedisClient.create(RedisURI.builder().withHost("127.0.0.1").withPort(port)
                    .withPassword(password.toCharArray()).build());
            plain = plainClient.connect(ByteArrayCodec.INSTANCE);
        }
        return plain;
    }

    @Override
    public void close() throws Exception {
        synchronized (this) {
            if (plain != null) {
                plain.close();
                plainClient.shutdown();
                plain = null;
            }
        }
        if (process != null && process.isAlive()) {
            kill();
        }
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
