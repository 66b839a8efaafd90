package io.rapidmq;

import io.rapidmq.ffi.AuditQuery;
import java.time.Instant;

/**
 * Builds the {@link AuditQuery} of {@link Admin#listAuditEvents(AuditQuery)}; a filter not set
 * matches everything.
 */
public final class AuditQueryBuilder {
    private Long sinceMs;
    private Long untilMs;
    private String actor;
    private String actionPrefix;
    private String outcome;
    private Integer limit;
    private String pageToken;

    /** Records at or after {@code since}. */
    public AuditQueryBuilder since(Instant since) {
        this.sinceMs = since.toEpochMilli();
        return this;
    }

    /** Records before {@code until}. */
    public AuditQueryBuilder until(Instant until) {
        this.untilMs = until.toEpochMilli();
        return this;
    }

    /** Records of one actor: {@code tenant/user}, {@code token:<id>} or {@code anonymous}. */
    public AuditQueryBuilder actor(String actor) {
        this.actor = actor;
        return this;
    }

    /** Records whose action starts with {@code prefix}, e.g. {@code auth.} or {@code topic.delete}. */
    public AuditQueryBuilder actionPrefix(String prefix) {
        this.actionPrefix = prefix;
        return this;
    }

    /** Records with this outcome: {@code ok}, {@code denied} or {@code failed}. */
    public AuditQueryBuilder outcome(String outcome) {
        this.outcome = outcome;
        return this;
    }

    /** At most this many records per page (default 100; the broker caps it at 1000). */
    public AuditQueryBuilder limit(int limit) {
        this.limit = limit;
        return this;
    }

    /** The page after the one that returned this {@code nextPageToken()}. */
    public AuditQueryBuilder pageToken(String pageToken) {
        this.pageToken = pageToken;
        return this;
    }

    /** The query. */
    public AuditQuery build() {
        return new AuditQuery(sinceMs, untilMs, actor, actionPrefix, outcome, limit, pageToken);
    }
}
