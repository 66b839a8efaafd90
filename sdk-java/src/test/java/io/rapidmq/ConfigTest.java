package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Configuration shows the core's defaults; unsupported options are explicit (C14). */
class ConfigTest {
    @Test
    void configDefaultsAreTheCores() {
        ProducerConfig p = ProducerConfig.of("t");
        assertEquals(Duration.ofMillis(5), p.linger());
        assertEquals(1000, p.maxBatchMessages());
        assertEquals(1024 * 1024, p.maxBatchBytes());
        assertEquals(5, p.maxInFlightPerPartition());
        assertTrue(p.idempotence());
        ConsumerConfig c = ConsumerConfig.builder("t", "s").build();
        // 0: the mode's default window (10,000 messages and 1 MiB streaming, 1,000 in queue mode)
        assertEquals(0, c.prefetch());
        assertEquals(0L, c.prefetchBytes());
        assertThrows(IllegalArgumentException.class, () -> ConsumerConfig.builder("t", "s").prefetchBytes(-1));
        assertThrows(IllegalArgumentException.class, () -> ConsumerConfig.builder("t", "s").prefetch(-1));
        assertFalse(c.autoCommit());
        assertEquals(Duration.ofMillis(500), c.commitInterval());
        assertEquals(StartPosition.latest(), c.start());
        assertTrue(RapidMQClient.builder().toString().contains("http://127.0.0.1:7420"));
        assertTrue(p.toString().contains("linger=PT0.005S"), p.toString());
    }

    @Test
    void credentialsArePassedThroughAndNeverPrinted() {
        // C14: credentials are no longer UNSUPPORTED; they reach the connect (nothing on port 1)
        UnavailableException err = assertThrows(UnavailableException.class,
                () -> RapidMQClient.builder().endpoints("http://127.0.0.1:1").token("secret").connect());
        assertTrue(err.isRetriable());
        assertThrows(UnavailableException.class, () -> RapidMQClient.builder().endpoints("http://127.0.0.1:1")
                .userPassword("alice", "secret").connect());
        assertFalse(RapidMQClient.builder().token("secret").toString().contains("secret"));
        assertFalse(RapidMQClient.builder().userPassword("alice", "secret").toString().contains("secret"));
    }

    @Test
    void tlsOptionsNeverPrintThePrivateKey() {
        String key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
        TlsOptions tls = new TlsOptions("ca.pem", null, "client.pem", null, null, key, "broker.internal");
        String shown = tls.toString();
        assertFalse(shown.contains("PRIVATE KEY"), shown);
        assertFalse(shown.contains("MIIEvQ"), shown);
        assertTrue(shown.contains("clientKeyPem=***"), shown);
        assertTrue(shown.contains("ca.pem") && shown.contains("broker.internal"), shown);
        assertEquals(key, tls.clientKeyPem());
        assertFalse(RapidMQClient.builder().tls(tls).token("secret").toString().contains("PRIVATE KEY"));
    }

    @Test
    void tlsSettingsAreCheckedBeforeConnecting() {
        // TLS with an http:// endpoint would silently not be used; a PEM given twice is ambiguous.
        InvalidArgumentException err = assertThrows(InvalidArgumentException.class, () -> RapidMQClient.builder()
                .endpoints("http://127.0.0.1:1").tls(new TlsOptions(null, null, null, null, null, null, null))
                .connect());
        assertEquals(InvalidArgumentException.class, err.getClass());
        assertFalse(err.isRetriable());
        assertThrows(InvalidArgumentException.class, () -> RapidMQClient.builder().endpoints("https://127.0.0.1:1")
                .tls(new TlsOptions("ca.pem", "-----BEGIN", null, null, null, null, null)).connect());
        assertThrows(InvalidArgumentException.class, () -> RapidMQClient.builder().endpoints("https://127.0.0.1:1")
                .tls(new TlsOptions(null, null, "c.pem", null, null, null, null)).connect());
    }

    @Test
    void unreachableEndpointIsARetriableUnavailableError() {
        // C14: nothing listens on port 1
        UnavailableException err = assertThrows(UnavailableException.class, () -> RapidMQClient.builder()
                .endpoints("http://127.0.0.1:1").connectTimeout(Duration.ofMillis(500)).connect());
        assertEquals(5003, err.code());
        assertTrue(err.isRetriable());
        assertInstanceOf(BrokerException.class, err);
    }

    @Test
    void badSettingsAreInvalidArguments() {
        assertThrows(InvalidArgumentException.class, () -> RapidMQClient.connect("not-a-url"));
        assertThrows(InvalidArgumentException.class,
                () -> RapidMQClient.builder().endpoints("http://127.0.0.1:1").connectTimeout(Duration.ZERO).connect());
        assertThrows(IllegalArgumentException.class, () -> Message.builder("x").priority(-1));
    }
}
