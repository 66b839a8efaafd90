package io.rapidmq;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A real broker owned by a test, started with the shared launch protocol of {@code tests/testkit}:
 *
 * <ol>
 *   <li>{@code rapidmq serve --data-dir DIR --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0
 *       --ready-file FILE} (the binary from {@code RAPIDMQ_BIN});
 *   <li>wait for FILE (written atomically once both listeners are bound and storage is open),
 *       JSON {@code {"grpc": "127.0.0.1:PORT", "http": "127.0.0.1:PORT", "pid": N}};
 *   <li>stop with SIGTERM (graceful) or SIGKILL (crash tests), restart on the same data.
 * </ol>
 *
 * Each broker has its own temporary data directory and log file. Waiting for readiness watches
 * the ready file and the process, bounded by {@link #READY_TIMEOUT}: no sleep decides anything.
 */
final class Broker implements AutoCloseable {
    static final Duration READY_TIMEOUT = Duration.ofSeconds(60);
    private static final Pattern GRPC = Pattern.compile("\"grpc\"\\s*:\\s*\"([^\"]+)\"");

    private final Path dir;
    private final Path dataDir;
    private final Path readyFile;
    private final Path logFile;
    /** Extra {@code rapidmq serve} arguments (TLS settings, --auth). */
    private final List<String> args;
    /** Extra environment (the bootstrap admin's credentials). */
    private final Map<String, String> env;
    private Process process;
    private String grpc;

    Broker() {
        this(List.of());
    }

    Broker(List<String> args) {
        this(args, Map.of());
    }

    Broker(List<String> args, Map<String, String> env) {
        this.args = List.copyOf(args);
        this.env = Map.copyOf(env);
        try {
            dir = Files.createTempDirectory("rapidmq-java-test-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        dataDir = dir.resolve("data");
        readyFile = dir.resolve("ready.json");
        logFile = dir.resolve("broker.log");
        launch();
    }

    static String binary() {
        String bin = System.getenv("RAPIDMQ_BIN");
        if (bin == null || bin.isEmpty()) {
            throw new IllegalStateException("RAPIDMQ_BIN must point at the rapidmq binary (cargo build -p rapidmq-cli)");
        }
        return bin;
    }

    /** The gRPC endpoint, e.g. {@code http://127.0.0.1:40123}. */
    String url() {
        return "http://" + grpc;
    }

    /** The gRPC endpoint with TLS, e.g. {@code https://127.0.0.1:40123}. */
    String httpsUrl() {
        return "https://" + grpc;
    }

    /**
     * {@code count} sockets bound to free ports for cluster listeners, for the caller to close just
     * before the brokers start. The ports are below the kernel's ephemeral range (32768-60999 on
     * Linux): brokers bind their gRPC and HTTP listeners to port 0, which the kernel takes from
     * that range, so a cluster port released there could go to another broker's listener first.
     */
    static List<ServerSocket> clusterSockets(int count) {
        int low = 20000;
        int span = 12000;
        int next = java.util.concurrent.ThreadLocalRandom.current().nextInt(span);
        List<ServerSocket> sockets = new ArrayList<>();
        for (int tries = 0; tries < span && sockets.size() < count; tries++) {
            try {
                sockets.add(new ServerSocket(low + next % span, 1, InetAddress.getLoopbackAddress()));
            } catch (IOException taken) {
                // In use: try the next one.
            }
            next += 7919;
        }
        if (sockets.size() < count) {
            throw new IllegalStateException("no free ports below the ephemeral range");
        }
        return sockets;
    }

    /**
     * {@code count} cluster-mode nodes (ids 1..count, every one a peer of the others). The cluster
     * ports are bound and released first, so every node is told every peer's address before any
     * node starts.
     */
    static List<Broker> cluster(int count) {
        List<String> peers = new ArrayList<>();
        List<ServerSocket> sockets = new ArrayList<>();
        try {
            sockets.addAll(clusterSockets(count));
            for (int id = 1; id <= count; id++) {
                peers.add(id + "=127.0.0.1:" + sockets.get(id - 1).getLocalPort());
            }
            for (ServerSocket socket : sockets) {
                socket.close();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Broker> nodes = new ArrayList<>();
        for (int id = 1; id <= count; id++) {
            nodes.add(new Broker(List.of("--node-id", Integer.toString(id), "--peers", String.join(",", peers))));
        }
        return nodes;
    }

    void launch() {
        if (process != null) {
            throw new IllegalStateException("the broker is still running");
        }
        try {
            Files.deleteIfExists(readyFile);
            List<String> command = new ArrayList<>(List.of(binary(), "serve", "--data-dir", dataDir.toString(),
                    "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--ready-file",
                    readyFile.toString()));
            command.addAll(args);
            ProcessBuilder builder = new ProcessBuilder(command);
            builder.environment().putIfAbsent("RAPIDMQ_LOG", "rapidmq=debug,info");
            builder.environment().putAll(env);
            builder.redirectErrorStream(true);
            builder.redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
            builder.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            process = builder.start();
            long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
            while (true) {
                if (Files.exists(readyFile)) {
                    String ready = Files.readString(readyFile, StandardCharsets.UTF_8);
                    Matcher g = GRPC.matcher(ready);
                    if (g.find()) {
                        grpc = g.group(1);
                        return;
                    }
                }
                if (!process.isAlive()) {
                    throw new IllegalStateException("broker exited with " + process.exitValue()
                            + " before ready; log:\n" + log());
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("broker not ready after " + READY_TIMEOUT + "; log:\n" + log());
                }
                // One step of the readiness wait (re-checks file and process), not a synchronisation.
                process.waitFor(5, TimeUnit.MILLISECONDS);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** {@code kill -9}. */
    void kill() {
        if (process != null) {
            process.destroyForcibly();
            waitExit();
        }
    }

    /** Graceful stop (SIGTERM). */
    void stop() {
        if (process != null) {
            process.destroy();
            waitExit();
        }
    }

    private void waitExit() {
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        process = null;
    }

    void crashAndRestart() {
        kill();
        launch();
    }

    void restart() {
        stop();
        launch();
    }

    String log() {
        try {
            return Files.readString(logFile, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    /** Kills the broker and removes its directory; returns the log. */
    String shutdown() {
        kill();
        String log = log();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // Left behind in the temp directory; nothing depends on it.
        }
        return log;
    }

    @Override
    public void close() {
        shutdown();
    }
}
