package io.rapidmq;

/**
 * Base of every RapidMQ error. Each stable error code has its own subclass (generated from the
 * error-code table, e.g. {@link TopicNotFoundException}), under the class of its code range
 * ({@link RequestException} 1xxx, {@link TopicException} 2xxx, {@link PublishException} 3xxx,
 * {@link SubscriptionException} 4xxx, {@link BrokerException} 5xxx, {@link AuthException} 6xxx).
 *
 * <p>React to the class or to {@link #code()}; the message text is not API. The client core has
 * already retried retriable failures within its budget before one is thrown.
 */
public class RapidMQException extends RuntimeException {
    private final int code;
    private final String codeName;
    private final String detail;
    private final boolean retriable;

    /**
     * @param code the stable numeric code
     * @param codeName the code's name, e.g. {@code TOPIC_NOT_FOUND}
     * @param detail human-readable detail (not API)
     * @param retriable whether the same request may succeed later
     */
    public RapidMQException(int code, String codeName, String detail, boolean retriable) {
        super(codeName + " (" + code + "): " + detail);
        this.code = code;
        this.codeName = codeName;
        this.detail = detail;
        this.retriable = retriable;
    }

    /** The stable numeric code (API; see {@code docs/errors.md}). */
    public int code() {
        return code;
    }

    /** The code's name, e.g. {@code TOPIC_NOT_FOUND}. */
    public String codeName() {
        return codeName;
    }

    /** Human-readable detail; not API, do not parse it. */
    public String detail() {
        return detail;
    }

    /** Whether the same request may succeed if retried later. */
    public boolean isRetriable() {
        return retriable;
    }

    /** The class of a code this SDK does not know yet: the class of its range. */
    static RapidMQException ofRange(int code, String name, String detail, boolean retriable) {
        return switch (code / 1000) {
            case 1 -> new RequestException(code, name, detail, retriable);
            case 2 -> new TopicException(code, name, detail, retriable);
            case 3 -> new PublishException(code, name, detail, retriable);
            case 4 -> new SubscriptionException(code, name, detail, retriable);
            case 5 -> new BrokerException(code, name, detail, retriable);
            case 6 -> new AuthException(code, name, detail, retriable);
            default -> new RapidMQException(code, name, detail, retriable);
        };
    }
}
