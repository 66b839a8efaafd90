package io.rapidmq;

import static io.rapidmq.ExecutionExceptionCheck.assertFailsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.SendStatus;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * Request/reply (C27) against a real broker: a responder on a queue subscription answers
 * concurrent requests, each gets its own reply; no responder is a timeout; a message that is no
 * request cannot be replied to; closing the requester deletes its inbox. Mirrors
 * {@code sdk-rust/tests/request.rs}.
 */
class RequestTest extends BrokerTest {
    /** A piece of test code run on its own thread. */
    @FunctionalInterface
    private interface Body {
        void run() throws Exception;
    }

    /** Runs {@code body} on a new thread; what it throws is added to {@code failures}. */
    private static Thread background(String name, List<Throwable> failures, Body body) {
        Thread thread = new Thread(() -> {
            try {
                body.run();
            } catch (Throwable e) {
                failures.add(e);
            }
        }, name);
        thread.start();
        return thread;
    }

    /** The last value of header {@code name}, or null. */
    private static byte[] header(ReceivedMessage message, String name) {
        byte[] value = null;
        for (Header h : message.headers()) {
            if (h.key().equals(name)) {
                value = h.value();
            }
        }
        return value;
    }

    /** The first message of partition 0, waiting for it to be there (bounded). */
    private ReceivedMessage first(String topic) {
        List<ReceivedMessage> got = client.fetch(topic, 0, 0, 1, Duration.ofSeconds(10)).messages();
        assertFalse(got.isEmpty(), "the request was sent");
        return got.getFirst();
    }

    /**
     * Answers {@code count} requests on {@code topic} with their value upper-cased and the
     * request's {@code n} header echoed back.
     */
    private static void respond(RapidMQClient responder, String topic, int count) {
        ConsumerConfig config = ConsumerConfig.builder(topic, "responders").start(StartPosition.earliest()).build();
        try (QueueConsumer consumer = responder.queueConsumer(config)) {
            int answered = 0;
            while (answered < count) {
                List<QueueMessage> deliveries = consumer.poll(count - answered, Duration.ofSeconds(30));
                assertFalse(deliveries.isEmpty(), "stalled after " + answered + " requests");
                for (QueueMessage delivery : deliveries) {
                    ReceivedMessage request = delivery.message();
                    byte[] n = header(request, "n");
                    assertNotNull(n, "the request's n header");
                    Message reply = Message.builder(text(request.value()).toUpperCase(Locale.ROOT)).header("n", n)
                            .build();
                    Delivery stored = responder.reply(request, reply);
                    assertEquals(SendStatus.APPENDED, stored.status());
                    consumer.ack(delivery);
                    answered++;
                }
            }
        }
    }

    @Test
    void concurrentRequestsEachGetTheirOwnReply() throws Exception {
        // C27 request-reply
        int requests = 20;
        String topic = makeTopic(2);
        try (RapidMQClient responder = RapidMQClient.connect(broker.url())) {
            List<Throwable> failures = new CopyOnWriteArrayList<>();
            Thread answering = background("responder", failures, () -> respond(responder, topic, requests));

            List<CompletableFuture<ReceivedMessage>> asks = new ArrayList<>();
            for (int i = 0; i < requests; i++) {
                Message request = Message.builder("ask-" + i).header("n", Integer.toString(i)).build();
                asks.add(client.requestAsync(topic, request, Duration.ofSeconds(30)));
            }
            for (int i = 0; i < requests; i++) {
                ReceivedMessage reply = get(asks.get(i));
                assertEquals("ASK-" + i, text(reply.value()));
                assertEquals(Integer.toString(i), text(header(reply, "n")), "reply " + i + " went to the wrong request");
                assertNotNull(header(reply, Message.CORRELATION_ID_HEADER));
                assertTrue(reply.topic().startsWith("_inbox."), "replies come through the inbox: " + reply.topic());
            }
            join(answering);
            assertTrue(failures.isEmpty(), failures.toString());
        }
    }

    @Test
    void aRequestNobodyAnswersTimesOutAndALateReplyIsDropped() throws Exception {
        // C27 request-reply
        String topic = makeTopic(1);
        long started = System.nanoTime();
        assertThrows(TimeoutException.class,
                () -> client.request(topic, Message.of("anyone?"), Duration.ofMillis(300)));
        Duration elapsed = Duration.ofNanos(System.nanoTime() - started);
        assertTrue(elapsed.compareTo(Duration.ofMillis(300)) >= 0, elapsed.toString());

        // The unanswered request is still on the topic; answering it now reaches nobody, and the
        // requester's next request gets its own reply, not the late one.
        try (RapidMQClient responder = RapidMQClient.connect(broker.url())) {
            ReceivedMessage late = first(topic);
            responder.reply(late, Message.of("late"));
            List<Throwable> failures = new CopyOnWriteArrayList<>();
            Thread answering = background("responder", failures, () -> {
                ConsumerConfig config = ConsumerConfig.builder(topic, "s").start(StartPosition.offset(1)).build();
                try (Consumer consumer = responder.consumer(config)) {
                    List<ReceivedMessage> got = consumer.poll(1, Duration.ofSeconds(30));
                    assertFalse(got.isEmpty(), "the second request arrived");
                    responder.reply(got.getFirst(), Message.of("on time"));
                }
            });
            ReceivedMessage reply = client.request(topic, Message.of("again"), Duration.ofSeconds(30));
            assertEquals("on time", text(reply.value()));
            join(answering);
            assertTrue(failures.isEmpty(), failures.toString());
        }
    }

    @Test
    void aMessageThatIsNoRequestCannotBeRepliedTo() throws Exception {
        // C27 request-reply
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            producer.send(Message.of("plain"));
        }
        ReceivedMessage plain = first(topic);
        assertThrows(InvalidArgumentException.class, () -> client.reply(plain, Message.of("x")));
        assertFailsWith(InvalidArgumentException.class, client.replyAsync(plain, Message.of("x")));

        assertThrows(InvalidArgumentException.class, () -> client.request(topic, Message.of("q"), Duration.ZERO));
        assertThrows(TopicNotFoundException.class,
                () -> client.request("no-such-topic", Message.of("q"), Duration.ofSeconds(5)));
    }

    @Test
    void closingTheRequesterDeletesItsInbox() throws Exception {
        // C27 request-reply
        String topic = makeTopic(1);
        RapidMQClient requester = RapidMQClient.connect(broker.url());
        try {
            assertFailsWith(TimeoutException.class,
                    requester.requestAsync(topic, Message.of("q"), Duration.ofMillis(100)));
            ReceivedMessage request = first(topic);
            byte[] replyTo = header(request, Message.REPLY_TO_HEADER);
            assertNotNull(replyTo, "a request carries its reply-to header");
            String inbox = text(replyTo);
            Admin admin = client.admin();
            assertEquals(inbox, admin.describeTopic(inbox).name(), "the inbox exists while in use");

            requester.close();
            assertThrows(TopicNotFoundException.class, () -> admin.describeTopic(inbox));
            assertThrows(TopicNotFoundException.class, () -> client.reply(request, Message.of("too late")));
        } finally {
            requester.close();
        }
    }
}
