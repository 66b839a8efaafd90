package io.rapidmq;

import io.rapidmq.ffi.TokenInfo;

/**
 * A new API token: the full token ({@code rmq_<id>_<secret>}), shown only here, and its
 * description. {@link #toString()} never prints the token.
 */
public final class CreatedToken {
    private final String token;
    private final TokenInfo info;

    CreatedToken(io.rapidmq.ffi.CreatedToken created) {
        this.token = created.token();
        this.info = created.info();
    }

    /** The token in full; pass it to {@link RapidMQClient.Builder#token(String)}. */
    public String token() {
        return token;
    }

    /** The token without its secret. */
    public TokenInfo info() {
        return info;
    }

    @Override
    public String toString() {
        return "CreatedToken[token=***, info=" + info + "]";
    }
}
