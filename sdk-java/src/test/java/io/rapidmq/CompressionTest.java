package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Compression;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.PartitionInfo;
import io.rapidmq.ffi.ReceivedMessage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * Batch compression (C29 batch-compression) against a real broker: with LZ4 and Zstandard a batch
 * of JSON-like messages, an empty value and non-UTF-8 bytes reads back exactly as sent, and the
 * topic stores far fewer bytes than the same messages sent plain.
 */
class CompressionTest extends BrokerTest {
    static List<Message> messages() {
        List<Message> out = new ArrayList<>();
        for (int n = 0; n < 200; n++) {
            out.add(Message.builder("{\"order_id\":" + (1000 + n) + ",\"status\":\"shipped\",\"customer\":\"c-" + (n % 7) + "\"}")
                    .key("k-" + (n % 5))
                    .header("n", Integer.toString(n))
                    .build());
        }
        out.add(Message.of(new byte[0]));
        out.add(Message.of(new byte[] {0, (byte) 0xff, (byte) 0xfe, (byte) 0x80}));
        return out;
    }

    @Test
    void compressedBatchesReadBackExactlyAndStoreFewerBytes() throws Exception {
        assertEquals(Compression.NONE, ProducerConfig.of("t").compression());
        Map<Compression, Long> stored = new EnumMap<>(Compression.class);
        for (Compression codec : Compression.values()) {
            String topic = makeTopic(1);
            ProducerConfig config = ProducerConfig.builder(topic).compression(codec).linger(Duration.ofSeconds(60)).build();
            List<Message> sent = messages();
            try (Producer producer = client.producer(config)) {
                List<CompletableFuture<Delivery>> receipts = new ArrayList<>();
                for (Message m : sent) {
                    receipts.add(producer.sendAsync(m));
                }
                producer.flush();
                for (int i = 0; i < receipts.size(); i++) {
                    assertEquals(i, get(receipts.get(i)).offset(), codec + ": message " + i);
                }
            }
            List<ReceivedMessage> log = readLog(topic);
            assertEquals(sent.size(), log.size(), codec.toString());
            for (int i = 0; i < log.size(); i++) {
                ReceivedMessage got = log.get(i);
                Message want = sent.get(i);
                assertEquals(i, got.offset());
                assertArrayEquals(want.value(), got.value(), codec + ": message " + i);
                assertArrayEquals(want.key(), got.key(), codec + ": message " + i);
                assertEquals(want.headers().size(), got.headers().size(), codec + ": message " + i);
            }
            long bytes = 0;
            for (PartitionInfo p : client.admin().describeTopic(topic).partitions()) {
                bytes += p.bytes();
            }
            stored.put(codec, bytes);
        }
        long plain = stored.get(Compression.NONE);
        for (Compression codec : List.of(Compression.LZ4, Compression.ZSTD)) {
            assertTrue(stored.get(codec) * 10 < plain * 7, codec + " stored " + stored.get(codec) + " bytes, plain " + plain);
        }
    }

    @Test
    void aMissingCompressionIsRefusedAtOnce() {
        assertThrows(NullPointerException.class, () -> ProducerConfig.builder("t").compression(null));
    }
}
