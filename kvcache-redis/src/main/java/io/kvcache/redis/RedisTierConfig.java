package io.kvcache.redis;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Where and how a {@link RedisTier} reaches Redis: the nodes (one for a standalone server, any
 * number of seed nodes for a cluster), credentials, TLS, the key namespace, the command timeout
 * and the presence cache's lifetime. Built with {@link #builder()} or parsed from a
 * {@code redis://[user:password@]host:port} or {@code rediss://…} (TLS) URI with
 * {@link #fromUri(String)}.
 *
 * <p>The password never leaves this object except toward the server: {@link #toString()} and
 * every message of this module show {@code host:port} and whether a password is set, not the
 * password.
 */
public final class RedisTierConfig {
    /** A host and port of one Redis node. */
    public record Node(String host, int port) {
        public Node {
            Objects.requireNonNull(host, "host");
            if (host.isBlank()) {
                throw new IllegalArgumentException("redis host is empty");
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("redis port " + port + " outside [1, 65535]");
            }
        }

        @Override
        public String toString() {
            return host + ":" + port;
        }
    }

    private final List<Node> nodes;
    private final boolean cluster;
    private final String username;
    private final char[] password;
    private final boolean tls;
    private final boolean verifyPeer;
    private final String namespace;
    private final Duration timeout;
    private final Duration presenceTtl;
    private final long presenceMaxEntries;
    private final int maxPendingWrites;
    private final Duration reconnectDelayMax;

    private RedisTierConfig(Builder b) {
        if (b.nodes.isEmpty()) {
            throw new IllegalArgumentException("no redis node given");
        }
        this.nodes = List.copyOf(b.nodes);
        this.cluster = b.cluster;
        this.username = b.username;
        this.password = b.password == null ? null : b.password.clone();
        this.tls = b.tls;
        this.verifyPeer = b.verifyPeer;
        this.namespace = b.namespace;
        this.timeout = b.timeout;
        this.presenceTtl = b.presenceTtl;
        this.presenceMaxEntries = b.presenceMaxEntries;
        this.maxPendingWrites = b.maxPendingWrites;
        this.reconnectDelayMax = b.reconnectDelayMax;
    }

    /** @return a builder with the defaults: namespace "kvcache", timeout 1 s, presence TTL 2 s */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Parses {@code redis://[user:password@]host:port[/]} or {@code rediss://…} (TLS, peer
     * verified). A user without a password, {@code redis://:password@host:port}, gives the
     * password alone (the {@code default} user). Percent-escapes in the user and password are decoded.
     *
     * @throws IllegalArgumentException naming what is wrong, never echoing the password
     */
    public static Builder fromUri(String uri) {
        Objects.requireNonNull(uri, "uri");
        URI u;
        try {
            u = new URI(uri);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("not a redis URI (expected redis://[user:password@]host:port): "
                    + e.getReason());
        }
        String scheme = u.getScheme();
        if (!"redis".equals(scheme) && !"rediss".equals(scheme)) {
            throw new IllegalArgumentException("redis URI must start with redis:// or rediss://, scheme was '"
                    + scheme + "'");
        }
        if (u.getHost() == null) {
            throw new IllegalArgumentException("redis URI has no host (expected redis://[user:password@]host:port)");
        }
        Builder b = builder().node(u.getHost(), u.getPort() < 0 ? 6379 : u.getPort()).tls("rediss".equals(scheme));
        String info = u.getRawUserInfo();
        if (info != null) {
            int colon = info.indexOf(':');
            String user = colon < 0 ? info : info.substring(0, colon);
            if (colon < 0) {
                throw new IllegalArgumentException("redis URI gives a user but no password: use user:password@");
            }
            String pass = info.substring(colon + 1);
            b.password(decode(pass).toCharArray());
            if (!user.isEmpty()) {
                b.username(decode(user));
            }
        }
        String path = u.getPath();
        if (path != null && !path.isEmpty() && !path.equals("/")) {
            throw new IllegalArgumentException("redis URI path '" + path + "' is not supported: database 0 is used");
        }
        return b;
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    /** @return the nodes: the server, or a cluster's seed nodes */
    public List<Node> nodes() {
        return nodes;
    }

    /** @return whether the nodes are seeds of a Redis Cluster (keys spread over hash slots) */
    public boolean cluster() {
        return cluster;
    }

    /** @return the ACL user, or null for the default user */
    public String username() {
        return username;
    }

    /** @return whether a password is set (the password itself is not exposed but to the client) */
    public boolean hasPassword() {
        return password != null;
    }

    /** @return a copy of the password, or null; for the client connection only */
    char[] password() {
        return password == null ? null : password.clone();
    }

    /** @return whether connections use TLS */
    public boolean tls() {
        return tls;
    }

    /** @return whether TLS verifies the server's certificate and host name */
    public boolean verifyPeer() {
        return verifyPeer;
    }

    /** @return the prefix of every key this tier writes, before ":" and the block's content address */
    public String namespace() {
        return namespace;
    }

    /** @return the longest a command may take before it counts as a miss */
    public Duration timeout() {
        return timeout;
    }

    /** @return how long a presence or absence answer is remembered */
    public Duration presenceTtl() {
        return presenceTtl;
    }

    /** @return how many presence answers are remembered at most */
    public long presenceMaxEntries() {
        return presenceMaxEntries;
    }

    /** @return writes in flight at most; a publish beyond them is skipped (counted), never waited for */
    public int maxPendingWrites() {
        return maxPendingWrites;
    }

    /** @return the longest wait between reconnection attempts */
    public Duration reconnectDelayMax() {
        return reconnectDelayMax;
    }

    /** @return "host:port" of the first node, for messages */
    String where() {
        return nodes.size() == 1 ? nodes.getFirst().toString() : nodes.getFirst() + " (+" + (nodes.size() - 1) + ")";
    }

    /** Shows where, not the password. */
    @Override
    public String toString() {
        return "RedisTierConfig[" + (tls ? "rediss" : "redis") + (cluster ? " cluster " : " ") + nodes
                + (username == null ? "" : ", user " + username) + (password == null ? "" : ", password set")
                + ", namespace " + namespace + ", timeout " + timeout.toMillis() + " ms, presence TTL "
                + presenceTtl.toMillis() + " ms]";
    }

    /** Configures a {@link RedisTierConfig}. */
    public static final class Builder {
        private final List<Node> nodes = new ArrayList<>();
        private boolean cluster;
        private String username;
        private char[] password;
        private boolean tls;
        private boolean verifyPeer = true;
        private String namespace = "kvcache";
        private Duration timeout = Duration.ofSeconds(1);
        private Duration presenceTtl = Duration.ofSeconds(2);
        private long presenceMaxEntries = 100_000;
        private int maxPendingWrites = 256;
        private Duration reconnectDelayMax = Duration.ofSeconds(1);

        private Builder() {
        }

        /** Adds a node: the server, or one seed node of a cluster. */
        public Builder node(String host, int port) {
            nodes.add(new Node(host, port));
            return this;
        }

        /** Treats the nodes as seeds of a Redis Cluster (default false: one standalone server). */
        public Builder cluster(boolean cluster) {
            this.cluster = cluster;
            return this;
        }

        /** Sets the ACL user (default: the default user). */
        public Builder username(String username) {
            if (username != null && username.isBlank()) {
                throw new IllegalArgumentException("redis user name is empty");
            }
            this.username = username;
            return this;
        }

        /** Sets the password ({@code AUTH}); the array is copied. */
        public Builder password(char[] password) {
            this.password = password == null ? null : password.clone();
            return this;
        }

        /** Uses TLS (default false). */
        public Builder tls(boolean tls) {
            this.tls = tls;
            return this;
        }

        /** Verifies the server's certificate and host name under TLS (default true). */
        public Builder verifyPeer(boolean verifyPeer) {
            this.verifyPeer = verifyPeer;
            return this;
        }

        /**
         * Sets the key prefix (default "kvcache"). Processes that share a namespace share blocks; the
         * blocks' content addresses already separate tenants (salt), models and layouts.
         */
        public Builder namespace(String namespace) {
            Objects.requireNonNull(namespace, "namespace");
            if (namespace.isEmpty() || namespace.chars().anyMatch(c -> c <= ' ' || c == '{' || c == '}')) {
                throw new IllegalArgumentException("redis namespace '" + namespace
                        + "' must be non-empty, without spaces, control characters or braces");
            }
            this.namespace = namespace;
            return this;
        }

        /** Sets the command timeout (default 1 s): a command that takes longer is a miss. */
        public Builder timeout(Duration timeout) {
            this.timeout = positive(timeout, "timeout");
            return this;
        }

        /** Sets how long presence and absence answers are remembered (default 2 s; zero: not at all). */
        public Builder presenceTtl(Duration ttl) {
            Objects.requireNonNull(ttl, "presenceTtl");
            if (ttl.isNegative()) {
                throw new IllegalArgumentException("presence TTL must not be negative, was " + ttl);
            }
            this.presenceTtl = ttl;
            return this;
        }

        /** Sets how many presence answers are remembered (default 100 000). */
        public Builder presenceMaxEntries(long n) {
            if (n < 1) {
                throw new IllegalArgumentException("presence cache size must be positive, was " + n);
            }
            this.presenceMaxEntries = n;
            return this;
        }

        /** Sets how many writes may be in flight (default 256). */
        public Builder maxPendingWrites(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("pending writes must be positive, was " + n);
            }
            this.maxPendingWrites = n;
            return this;
        }

        /** Sets the longest wait between reconnection attempts (default 1 s). */
        public Builder reconnectDelayMax(Duration d) {
            this.reconnectDelayMax = positive(d, "reconnect delay");
            return this;
        }

        private static Duration positive(Duration d, String what) {
            Objects.requireNonNull(d, what);
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException(what + " must be positive, was " + d);
            }
            return d;
        }

        /** @return the configuration */
        public RedisTierConfig build() {
            return new RedisTierConfig(this);
        }
    }
}
