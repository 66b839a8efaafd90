package io.rapidmq;

/**
 * The operation or option is not supported (yet) in this mode or version: credentials
 * until the security work lands, {@code nack} in stream mode. Code {@code INVALID_ARGUMENT};
 * retrying cannot help.
 */
public class UnsupportedException extends InvalidArgumentException {
    /** @param detail what is unsupported (not API) */
    public UnsupportedException(String detail) {
        super(detail, false);
    }
}
