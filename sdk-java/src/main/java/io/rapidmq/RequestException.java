package io.rapidmq;

/** Codes 1000-1999: the request itself is invalid (malformed, bad arguments). Fix the call. */
public class RequestException extends RapidMQException {
    /**
     * @param code the stable numeric code
     * @param codeName the code's name
     * @param detail human-readable detail (not API)
     * @param retriable whether the same request may succeed later
     */
    public RequestException(int code, String codeName, String detail, boolean retriable) {
        super(code, codeName, detail, retriable);
    }
}
