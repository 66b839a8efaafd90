package io.rapidmq;

/** Codes 2000-2999: topics and partitions. */
public class TopicException extends RapidMQException {
    /**
     * @param code the stable numeric code
     * @param codeName the code's name
     * @param detail human-readable detail (not API)
     * @param retriable whether the same request may succeed later
     */
    public TopicException(int code, String codeName, String detail, boolean retriable) {
        super(code, codeName, detail, retriable);
    }
}
