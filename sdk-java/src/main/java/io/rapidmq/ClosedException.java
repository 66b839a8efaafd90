package io.rapidmq;

/**
 * The client, producer or consumer was closed. Code {@code INVALID_ARGUMENT}; create a new one.
 */
public class ClosedException extends InvalidArgumentException {
    /** @param detail what was closed (not API) */
    public ClosedException(String detail) {
        super(detail, false);
    }
}
