package io.rapidmq;

import java.time.Instant;

/** Where a new subscription (or a seek) starts. */
public final class StartPosition {
    private static final StartPosition LATEST = new StartPosition(new io.rapidmq.ffi.StartAt.Latest());
    private static final StartPosition EARLIEST = new StartPosition(new io.rapidmq.ffi.StartAt.Earliest());

    private final io.rapidmq.ffi.StartAt position;

    private StartPosition(io.rapidmq.ffi.StartAt position) {
        this.position = position;
    }

    /** Only messages appended from now on (the default). */
    public static StartPosition latest() {
        return LATEST;
    }

    /** The oldest retained message. */
    public static StartPosition earliest() {
        return EARLIEST;
    }

    /** This offset, clamped to the retained range. */
    public static StartPosition offset(long offset) {
        return new StartPosition(new io.rapidmq.ffi.StartAt.Offset(offset));
    }

    /** The first message appended at or after {@code time}. */
    public static StartPosition timestamp(Instant time) {
        return new StartPosition(new io.rapidmq.ffi.StartAt.Timestamp(time.toEpochMilli()));
    }

    io.rapidmq.ffi.StartAt toNative() {
        return position;
    }

    static StartPosition fromNative(io.rapidmq.ffi.StartAt position) {
        return switch (position) {
            case io.rapidmq.ffi.StartAt.Latest l -> LATEST;
            case io.rapidmq.ffi.StartAt.Earliest e -> EARLIEST;
            default -> new StartPosition(position);
        };
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof StartPosition s && s.position.equals(position);
    }

    @Override
    public int hashCode() {
        return position.hashCode();
    }

    @Override
    public String toString() {
        return position.toString();
    }
}
