package io.rapidmq;

/** Codes 4000-4999: subscriptions and consuming. */
public class SubscriptionException extends RapidMQException {
    /**
     * @param code the stable numeric code
     * @param codeName the code's name
     * @param detail human-readable detail (not API)
     * @param retriable whether the same request may succeed later
     */
    public SubscriptionException(int code, String codeName, String detail, boolean retriable) {
        super(code, codeName, detail, retriable);
    }
}
