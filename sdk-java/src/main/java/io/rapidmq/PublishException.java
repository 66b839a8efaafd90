package io.rapidmq;

/** Codes 3000-3999: publishing. */
public class PublishException extends RapidMQException {
    /**
     * @param code the stable numeric code
     * @param codeName the code's name
     * @param detail human-readable detail (not API)
     * @param retriable whether the same request may succeed later
     */
    public PublishException(int code, String codeName, String detail, boolean retriable) {
        super(code, codeName, detail, retriable);
    }
}
