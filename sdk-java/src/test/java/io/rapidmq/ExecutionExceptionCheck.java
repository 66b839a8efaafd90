package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** Asserts how a future fails, bounded by the hang guard. */
final class ExecutionExceptionCheck {
    private ExecutionExceptionCheck() {}

    static <T extends Throwable> T assertFailsWith(Class<T> type, CompletableFuture<?> future) throws Exception {
        try {
            future.get(BrokerTest.GUARD.toSeconds(), TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return assertInstanceOf(type, e.getCause());
        }
        return fail("completed normally; expected " + type.getSimpleName());
    }
}
