package io.kvcache.examples.demo;

import com.sun.net.httpserver.HttpServer;
import io.kvcache.core.KvCacheManager;
import io.kvcache.micrometer.KvCacheMetrics;
import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;

/**
 * {@code --metrics-port}: the cache's meters ({@link KvCacheMetrics}) in Prometheus' text format
 * at {@code http://127.0.0.1:PORT/metrics}, served by the JDK's HTTP server on the loopback
 * interface until closed.
 */
final class MetricsEndpoint implements AutoCloseable {
    static final String PATH = "/metrics";

    private final PrometheusMeterRegistry registry;
    private final HttpServer server;

    private MetricsEndpoint(PrometheusMeterRegistry registry, HttpServer server) {
        this.registry = registry;
        this.server = server;
    }

    /**
     * @param port the TCP port, 0 for any free one
     * @param cache the cache whose meters are served
     * @return the running endpoint
     * @throws UncheckedIOException when the port cannot be bound (named)
     */
    static MetricsEndpoint start(int port, KvCacheManager cache) {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        new KvCacheMetrics(cache, Tags.of("application", "long-context-demo")).bindTo(registry);
        HttpServer server;
        try {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 0);
        } catch (IOException e) {
            registry.close();
            throw new UncheckedIOException("--metrics-port " + port + ": cannot listen (" + e.getMessage() + ")", e);
        }
        server.createContext(PATH, exchange -> {
            try (exchange) {
                byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
                exchange.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
                exchange.sendResponseHeaders(200, body.length);
                try (OutputStream out = exchange.getResponseBody()) {
                    out.write(body);
                }
            }
        });
        server.start();
        return new MetricsEndpoint(registry, server);
    }

    /** @return where a scraper finds the meters */
    URI uri() {
        InetSocketAddress a = server.getAddress();
        return URI.create("http://" + a.getAddress().getHostAddress() + ":" + a.getPort() + PATH);
    }

    @Override
    public void close() {
        server.stop(0);
        registry.close();
    }
}
