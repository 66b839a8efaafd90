package io.rapidmq;

/** Codes 5000-5999: the broker (storage, overload, shutdown, timeouts). */
public class BrokerException extends RapidMQException {
    /**
     * @param code the stable numeric code
     * @param codeName the code's name
     * @param detail human-readable detail (not API)
     * @param retriable whether the same request may succeed later
     */
    public BrokerException(int code, String codeName, String detail, boolean retriable) {
        super(code, codeName, detail, retriable);
    }
}
