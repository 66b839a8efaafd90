package io.rapidmq;

import io.rapidmq.ffi.NativeException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * The bridge to the generated bindings: native errors become the {@link RapidMQException}
 * subclass of their code, native futures become facade futures whose cancellation (or timeout)
 * cancels the native call, and blocking variants wait for them.
 */
final class Native {
    /** Native async calls started by the facade and not yet finished (leak checks in tests). */
    private static final AtomicLong IN_FLIGHT = new AtomicLong();

    static {
        NativeLibrary.load();
    }

    private Native() {}

    /** Loads the native library before any generated class is touched. */
    static void init() {
        // The static initialiser did the work.
    }

    /** Native async calls not finished yet. */
    static long inFlight() {
        return IN_FLIGHT.get();
    }

    /** A call into the bindings that may throw {@link NativeException}. */
    @FunctionalInterface
    interface Call<T> {
        T run() throws NativeException;
    }

    /** A void call into the bindings. */
    @FunctionalInterface
    interface VoidCall {
        void run() throws NativeException;
    }

    static <T> T call(Call<T> call) {
        try {
            return call.run();
        } catch (NativeException e) {
            throw convert(e);
        }
    }

    static void run(VoidCall call) {
        try {
            call.run();
        } catch (NativeException e) {
            throw convert(e);
        }
    }

    /**
     * A facade future for a native one: failures are converted; when the facade future completes
     * exceptionally first (cancelled, timed out with {@code orTimeout}, completed by the caller),
     * the native call is cancelled, which drops its Rust future and aborts its task.
     */
    static <T> CompletableFuture<T> bridge(CompletableFuture<T> inner) {
        return bridge(inner, Function.identity());
    }

    /**
     * {@link #bridge(CompletableFuture)} with the native result converted by {@code convert} (on
     * the thread that completes the native future); cancelling the facade future still cancels
     * the native call, which {@code thenApply} on a bridged future would not.
     */
    static <T, R> CompletableFuture<R> bridge(CompletableFuture<T> inner, Function<? super T, ? extends R> convert) {
        IN_FLIGHT.incrementAndGet();
        CompletableFuture<R> outer = new CompletableFuture<>();
        inner.whenComplete((value, error) -> {
            IN_FLIGHT.decrementAndGet();
            if (error != null) {
                outer.completeExceptionally(convert(error));
                return;
            }
            R converted;
            try {
                converted = convert.apply(value);
            } catch (RuntimeException e) {
                outer.completeExceptionally(e);
                return;
            }
            outer.complete(converted);
        });
        outer.whenComplete((value, error) -> {
            if (error != null && !inner.isDone()) {
                inner.cancel(true);
            }
        });
        return outer;
    }

    /** Blocks for a native future; interrupting the waiting thread cancels the call. */
    static <T> T await(CompletableFuture<T> future) {
        try {
            return future.get();
        } catch (ExecutionException e) {
            throw convert(e.getCause());
        } catch (InterruptedException e) {
            future.cancel(true);
            Thread.currentThread().interrupt();
            CancellationException cancelled = new CancellationException("interrupted while waiting for RapidMQ");
            cancelled.initCause(e);
            throw cancelled;
        }
    }

    /** Blocking variant of an async native call. */
    static <T> T await(Call<CompletableFuture<T>> call) {
        return await(call(call));
    }

    /** The {@link RapidMQException} for a native failure; other throwables pass through. */
    static RuntimeException convert(Throwable error) {
        while ((error instanceof CompletionException || error instanceof ExecutionException)
                && error.getCause() != null) {
            error = error.getCause();
        }
        if (error instanceof NativeException.Failure f) {
            return exception(f.code(), f.name(), f.kind(), f.detail(), f.retriable());
        }
        if (error instanceof RuntimeException runtime) {
            return runtime;
        }
        return new CompletionException(error);
    }

    static RapidMQException exception(int code, String name, io.rapidmq.ffi.ErrorKind kind, String detail,
            boolean retriable) {
        return switch (kind) {
            case UNSUPPORTED -> new UnsupportedException(detail);
            case CLOSED -> new ClosedException(detail);
            default -> ErrorCodes.create(code, name, detail, retriable);
        };
    }
}
