package io.rapidmq;

import io.rapidmq.ffi.ClientOptions;
import io.rapidmq.ffi.Credentials;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.FetchResult;
import io.rapidmq.ffi.NativeClient;
import io.rapidmq.ffi.OutgoingMessage;
import io.rapidmq.ffi.PublishAck;
import io.rapidmq.ffi.RapidmqUniffi;
import io.rapidmq.ffi.ReceivedMessage;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * A connection to a RapidMQ broker, and the factory of producers, consumers and the admin API.
 * Thread-safe; share one per application.
 *
 * <pre>{@code
 * try (RapidMQClient client = RapidMQClient.connect("http://127.0.0.1:7420");
 *      Producer producer = client.producer("orders")) {
 *     Delivery d = producer.send(Message.of("hello"));
 * }
 * }</pre>
 *
 * <p>{@link #close()} closes every producer (flushing) and consumer (committing) made from it.
 */
public final class RapidMQClient implements AutoCloseable {
    private final NativeClient client;

    private RapidMQClient(NativeClient client) {
        this.client = client;
    }

    /** Connects to one endpoint ({@code http://host:port}) with default settings. */
    public static RapidMQClient connect(String endpoint) {
        return builder().endpoints(endpoint).connect();
    }

    /**
     * The version of the client core this SDK runs on (the release version, e.g. {@code 0.1.0}),
     * the same for every RapidMQ artifact of a release.
     */
    public static String version() {
        Native.init();
        return RapidmqUniffi.version();
    }

    /**
     * The git revision the native client core was built from (12 hex digits), or
     * {@code unknown} for a build made outside a git checkout.
     */
    public static String gitRevision() {
        Native.init();
        return RapidmqUniffi.gitRevision();
    }

    /** A builder starting from the core's defaults ({@code http://127.0.0.1:7420}, 5 s connect timeout). */
    public static Builder builder() {
        Native.init();
        return new Builder(RapidmqUniffi.defaultClientOptions());
    }

    /** The endpoints in use. */
    public List<String> endpoints() {
        return client.endpoints();
    }

    /**
     * Replaces the endpoints; the current connection is dropped and producers and consumers of
     * this client reconnect to the new list.
     */
    public void setEndpoints(String... endpoints) {
        Native.run(() -> client.setEndpoints(Arrays.asList(endpoints)));
    }

    /** The admin API: topics, subscriptions, lag, dead letters, status. */
    public Admin admin() {
        return new Admin(client.admin());
    }

    /** A producer for {@code topic} with default settings; fails with {@link TopicNotFoundException}. */
    public Producer producer(String topic) {
        return producer(ProducerConfig.of(topic));
    }

    /** A producer; looks the topic up first ({@link TopicNotFoundException}). */
    public Producer producer(ProducerConfig config) {
        return new Producer(Native.await(() -> client.createProducer(config.toNative())));
    }

    /** A stream-mode consumer of {@code subscription} on {@code topic}, with default settings. */
    public Consumer consumer(String topic, String subscription) {
        return consumer(ConsumerConfig.builder(topic, subscription).build());
    }

    /**
     * Subscribes in stream mode and returns once the broker confirmed it. Fails with
     * {@link TopicNotFoundException}, {@link SubscriptionModeMismatchException},
     * {@link InvalidArgumentException}.
     */
    public Consumer consumer(ConsumerConfig config) {
        return new Consumer(Native.await(() -> client.subscribe(config.toNative())));
    }

    /**
     * Subscribes in queue mode (creating the subscription with the config's queue settings) and
     * returns once the broker confirmed it. Fails with {@link TopicNotFoundException},
     * {@link SubscriptionModeMismatchException} (a stream subscription of that name exists),
     * {@link InvalidArgumentException} (no subscription name, {@code maxDeliveries} 0).
     */
    public QueueConsumer queueConsumer(ConsumerConfig config) {
        return new QueueConsumer(Native.await(() -> client.subscribeQueue(config.toNative())));
    }

    /**
     * Publishes one batch to one partition in a single attempt: no batching, no retries (the
     * raw path for tools and tests). {@code producerId} 0 disables idempotence.
     */
    public PublishAck publishBatch(String topic, int partition, long producerId, long baseSequence,
            List<Message> messages) {
        List<OutgoingMessage> batch = messages.stream().map(Message::toNative).toList();
        return Native.await(() -> client.publishBatch(topic, partition, producerId, baseSequence, batch));
    }

    /** Reads up to {@code max} messages of {@code partition} from {@code offset}, waiting up to {@code maxWait}. */
    public FetchResult fetch(String topic, int partition, long offset, int max, Duration maxWait) {
        return Native.await(() -> client.fetch(topic, partition, offset, max, maxWait));
    }

    /**
     * Sends {@code request} to {@code topic} as a request and returns the first reply, waiting at
     * most {@code timeout} for the send and the reply together. The message goes out with a
     * {@code reply-to} header (this client's inbox topic {@code _inbox.<hex>}, made on the first
     * request and deleted by {@link #close()}) and a unique {@code correlation-id}, replacing any
     * headers of those names it carries; a responder answers with {@link #reply}. The reply is read
     * from the inbox, so its {@link ReceivedMessage#topic()} is the inbox topic.
     *
     * <pre>{@code
     * ReceivedMessage reply = client.request("prices", Message.of("EURUSD"), Duration.ofSeconds(2));
     * }</pre>
     *
     * <p>Fails with {@link TimeoutException} (retriable) when no reply came in time,
     * {@link InvalidArgumentException} for a zero timeout, {@link TopicNotFoundException}, and
     * whatever the send failed with. A reply that comes after the timeout is dropped.
     */
    public ReceivedMessage request(String topic, Message request, Duration timeout) {
        return Native.await(requestAsync(topic, request, timeout));
    }

    /**
     * {@link #request} as a future. Cancelling it (or {@code orTimeout}) abandons the request: the
     * native call is cancelled and a reply that comes later is dropped.
     */
    public CompletableFuture<ReceivedMessage> requestAsync(String topic, Message request, Duration timeout) {
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(timeout, "timeout");
        return Native.bridge(client.request(topic, request.toNative(), timeout));
    }

    /**
     * Answers {@code request} (a message sent with {@link #request}, as any consumer or
     * {@link #fetch} received it; for a queue delivery pass {@link QueueMessage#message()}) with
     * {@code reply}: sends it to the request's {@code reply-to} topic with its
     * {@code correlation-id}, and returns once the broker stored it.
     *
     * <pre>{@code
     * for (QueueMessage delivery : consumer.poll(10, Duration.ofSeconds(1))) {
     *     client.reply(delivery.message(), Message.of("1.0842"));
     *     consumer.ack(delivery);
     * }
     * }</pre>
     *
     * <p>Fails with {@link InvalidArgumentException} for a message that was not sent as a request
     * (it lacks either header), {@link TopicNotFoundException} when the requester's inbox is gone
     * (it closed), and whatever the send failed with.
     */
    public Delivery reply(ReceivedMessage request, Message reply) {
        return Native.await(replyAsync(request, reply));
    }

    /** {@link #reply} as a future. */
    public CompletableFuture<Delivery> replyAsync(ReceivedMessage request, Message reply) {
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(reply, "reply");
        return Native.bridge(client.reply(request.headers(), reply.toNative()));
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return client.isClosed();
    }

    /** {@link #close()} as a future. */
    public CompletableFuture<Void> closeAsync() {
        return Native.bridge(client.closeAsync());
    }

    /**
     * Closes every producer (flushing what is buffered) and consumer (final commits and acks) of
     * this client, then the connection. Idempotent. Afterwards every call fails with
     * {@link ClosedException}.
     */
    @Override
    public void close() {
        Native.await(closeAsync());
    }

    @Override
    public String toString() {
        return "RapidMQClient(" + endpoints() + ")";
    }

    /** Builds and connects a {@link RapidMQClient}. */
    public static final class Builder {
        private List<String> endpoints;
        private Duration connectTimeout;
        private Duration requestTimeout;
        private TlsOptions tls;
        private Credentials credentials;
        private String tenant;

        private Builder(ClientOptions d) {
            endpoints = d.endpoints();
            connectTimeout = d.connectTimeout();
            requestTimeout = d.requestTimeout();
            tenant = d.tenant();
        }

        /** gRPC endpoints ({@code http://host:port}, or {@code https://host:port} for TLS), tried in order. */
        public Builder endpoints(String... endpoints) {
            this.endpoints = List.of(endpoints);
            return this;
        }

        /** Time allowed to open a connection to one endpoint (default 5 s). */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = timeout;
            return this;
        }

        /** Time allowed for one request attempt (default 30 s). */
        public Builder requestTimeout(Duration timeout) {
            this.requestTimeout = timeout;
            return this;
        }

        /**
         * TLS settings for {@code https://} endpoints (without them the system roots are trusted);
         * see {@link TlsOptions}. Set with an {@code http://} endpoint it is an
         * {@link InvalidArgumentException}, so TLS is never silently off.
         */
        public Builder tls(TlsOptions tls) {
            this.tls = tls;
            return this;
        }

        /** An API token ({@code rmq_<id>_<secret>}), sent on every call; never printed. */
        public Builder token(String token) {
            this.credentials = new Credentials.Token(token);
            return this;
        }

        /** A user and password that log in at connect; the session is renewed before it expires. */
        public Builder userPassword(String user, String password) {
            this.credentials = new Credentials.UserPassword(user, password);
            return this;
        }

        /**
         * The tenant to act in, sent as {@code rapidmq-tenant} with every request. Only a cluster
         * admin may name a tenant other than its own; for anyone else, and for a tenant that does
         * not exist, requests fail with {@link TenantNotFoundException}. By default the
         * credentials' tenant. {@link #connect()} fails with {@link InvalidArgumentException} for
         * a name that is not a tenant name ({@code [A-Za-z0-9._-]{1,64}}).
         */
        public Builder tenant(String tenant) {
            this.tenant = tenant;
            return this;
        }

        /**
         * Validates the settings and connects to the first reachable endpoint. Fails with
         * {@link InvalidArgumentException} for bad settings, {@link UnavailableException}
         * (retriable) when no endpoint answers, {@link TlsHandshakeFailedException} (not
         * retriable) when the TLS handshake fails, and {@link UnauthenticatedException} (not
         * retriable) for credentials the broker refuses.
         */
        public RapidMQClient connect() {
            return Native.await(connectAsync());
        }

        /** {@link #connect()} as a future. */
        public CompletableFuture<RapidMQClient> connectAsync() {
            ClientOptions options = new ClientOptions(endpoints, connectTimeout, requestTimeout,
                    tls != null ? tls.toNative() : null, credentials, tenant);
            return Native.bridge(RapidmqUniffi.connect(options)).thenApply(RapidMQClient::new);
        }

        @Override
        public String toString() {
            return "RapidMQClient.Builder(endpoints=" + endpoints + ", connectTimeout=" + connectTimeout
                    + ", requestTimeout=" + requestTimeout + ", tls=" + (tls != null) + ", credentials="
                    + (credentials != null ? "***" : "none") + ", tenant=" + tenant + ")";
        }
    }
}
