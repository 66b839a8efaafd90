package io.rapidmq;

import java.util.Objects;

/**
 * TLS settings for {@code https://} endpoints, passed to {@link RapidMQClient.Builder#tls}. Each
 * PEM is a file ({@code *Path}, read again at every reconnect) or inline text ({@code *Pem}), not
 * both; {@code null} is unset. With no CA set the system roots are trusted; a client certificate
 * needs a key. {@link #toString()} never prints the private key.
 *
 * <pre>{@code
 * new TlsOptions(caCertPath, caCertPem, clientCertPath, clientCertPem, clientKeyPath, clientKeyPem,
 *         serverName)
 * }</pre>
 */
public final class TlsOptions {
    private final String caCertPath;
    private final String caCertPem;
    private final String clientCertPath;
    private final String clientCertPem;
    private final String clientKeyPath;
    private final String clientKeyPem;
    private final String serverName;

    /**
     * @param caCertPath PEM file with the CA certificates to trust
     * @param caCertPem the CA certificates to trust, as PEM text
     * @param clientCertPath PEM file with the client certificate (chain), for mutual TLS
     * @param clientCertPem the client certificate (chain) as PEM text
     * @param clientKeyPath PEM file with the private key of the client certificate
     * @param clientKeyPem the private key of the client certificate as PEM text (never printed)
     * @param serverName name to verify the server certificate against; the endpoint's host when unset
     */
    public TlsOptions(String caCertPath, String caCertPem, String clientCertPath, String clientCertPem,
            String clientKeyPath, String clientKeyPem, String serverName) {
        this.caCertPath = caCertPath;
        this.caCertPem = caCertPem;
        this.clientCertPath = clientCertPath;
        this.clientCertPem = clientCertPem;
        this.clientKeyPath = clientKeyPath;
        this.clientKeyPem = clientKeyPem;
        this.serverName = serverName;
    }

    /** PEM file with the CA certificates to trust, or {@code null}. */
    public String caCertPath() {
        return caCertPath;
    }

    /** The CA certificates to trust as PEM text, or {@code null}. */
    public String caCertPem() {
        return caCertPem;
    }

    /** PEM file with the client certificate (chain), or {@code null}. */
    public String clientCertPath() {
        return clientCertPath;
    }

    /** The client certificate (chain) as PEM text, or {@code null}. */
    public String clientCertPem() {
        return clientCertPem;
    }

    /** PEM file with the client's private key, or {@code null}. */
    public String clientKeyPath() {
        return clientKeyPath;
    }

    /** The client's private key as PEM text, or {@code null}. */
    public String clientKeyPem() {
        return clientKeyPem;
    }

    /** The name the server certificate is verified against, or {@code null} for the endpoint's host. */
    public String serverName() {
        return serverName;
    }

    io.rapidmq.ffi.TlsOptions toNative() {
        return new io.rapidmq.ffi.TlsOptions(caCertPath, caCertPem, clientCertPath, clientCertPem, clientKeyPath,
                clientKeyPem, serverName);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TlsOptions t && Objects.equals(caCertPath, t.caCertPath)
                && Objects.equals(caCertPem, t.caCertPem) && Objects.equals(clientCertPath, t.clientCertPath)
                && Objects.equals(clientCertPem, t.clientCertPem) && Objects.equals(clientKeyPath, t.clientKeyPath)
                && Objects.equals(clientKeyPem, t.clientKeyPem) && Objects.equals(serverName, t.serverName);
    }

    @Override
    public int hashCode() {
        return Objects.hash(caCertPath, caCertPem, clientCertPath, clientCertPem, clientKeyPath, clientKeyPem,
                serverName);
    }

    /** The settings, with the private key shown as {@code ***}. */
    @Override
    public String toString() {
        return "TlsOptions[caCertPath=" + caCertPath + ", caCertPem=" + caCertPem + ", clientCertPath="
                + clientCertPath + ", clientCertPem=" + clientCertPem + ", clientKeyPath=" + clientKeyPath
                + ", clientKeyPem=" + (clientKeyPem != null ? "***" : null) + ", serverName=" + serverName + "]";
    }
}
