package io.rapidmq.ffi;

/** Reads the generated bindings' bookkeeping of async calls, for leak checks. */
public final class FfiProbe {
    private FfiProbe() {}

    /** Async native calls whose continuation is still registered (polled and not yet woken). */
    public static int pendingContinuations() {
        return UniffiAsyncHelpers.uniffiContinuationHandleMap.size();
    }
}
