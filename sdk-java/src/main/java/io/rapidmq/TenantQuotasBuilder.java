package io.rapidmq;

import io.rapidmq.ffi.TenantQuotas;

/**
 * Builds the {@link TenantQuotas} of {@link Admin#createTenant(String, TenantQuotas)} and
 * {@link Admin#setTenantQuotas}. A quota not set stays {@code null}: the broker's default (create)
 * or the current value (set). A set 0 means unlimited. Rates are per broker node.
 */
public final class TenantQuotasBuilder {
    private Long publishBytesPerSec;
    private Long publishMsgsPerSec;
    private Long consumeBytesPerSec;
    private Long storageBytes;
    private Long maxTopics;
    private Long maxPartitions;
    private Long maxConnections;

    /** Bytes published per second. */
    public TenantQuotasBuilder publishBytesPerSec(long value) {
        this.publishBytesPerSec = value;
        return this;
    }

    /** Messages published per second. */
    public TenantQuotasBuilder publishMsgsPerSec(long value) {
        this.publishMsgsPerSec = value;
        return this;
    }

    /** Bytes consumed per second. */
    public TenantQuotasBuilder consumeBytesPerSec(long value) {
        this.consumeBytesPerSec = value;
        return this;
    }

    /** Bytes stored in the tenant's partitions. */
    public TenantQuotasBuilder storageBytes(long value) {
        this.storageBytes = value;
        return this;
    }

    /** Topics. */
    public TenantQuotasBuilder maxTopics(long value) {
        this.maxTopics = value;
        return this;
    }

    /** Partitions over all the tenant's topics. */
    public TenantQuotasBuilder maxPartitions(long value) {
        this.maxPartitions = value;
        return this;
    }

    /** Open client connections in the tenant. */
    public TenantQuotasBuilder maxConnections(long value) {
        this.maxConnections = value;
        return this;
    }

    /** The quotas set so far; the others {@code null}. */
    public TenantQuotas build() {
        return new TenantQuotas(publishBytesPerSec, publishMsgsPerSec, consumeBytesPerSec, storageBytes, maxTopics,
                maxPartitions, maxConnections);
    }
}
