package io.rapidmq;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Loads the native client core bundled in the jar.
 *
 * <p>The jar carries {@code native/<os>-<arch>/librapidmq_uniffi.so} (or {@code .dylib}). On
 * first use it is copied to a temporary file (deleted when the JVM exits) and the generated
 * bindings are pointed at it through the system property
 * {@code uniffi.component.rapidmq_uniffi.libraryOverride}, which they read before loading. Setting
 * {@code rapidmq.native.library} to an absolute path uses that file instead (e.g. a library built
 * with other settings).
 */
final class NativeLibrary {
    /** The UniFFI namespace of the {@code rapidmq-uniffi} crate. */
    static final String OVERRIDE_PROPERTY = "uniffi.component.rapidmq_uniffi.libraryOverride";
    /** Overrides the bundled library with a file. */
    static final String PATH_PROPERTY = "rapidmq.native.library";

    private static Path loaded;

    private NativeLibrary() {}

    /** The platform directory inside the jar, e.g. {@code linux-x86_64}. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String osName;
        if (os.contains("linux")) {
            osName = "linux";
        } else if (os.contains("mac") || os.contains("darwin")) {
            osName = "macos";
        } else {
            throw new UnsatisfiedLinkError("RapidMQ: no native library for OS " + os);
        }
        String archName = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> throw new UnsatisfiedLinkError("RapidMQ: no native library for architecture " + arch);
        };
        return osName + "-" + archName;
    }

    private static String fileName() {
        return platform().startsWith("macos") ? "librapidmq_uniffi.dylib" : "librapidmq_uniffi.so";
    }

    /** Makes the native library available to the generated bindings; idempotent. */
    static synchronized Path load() {
        if (loaded != null) {
            return loaded;
        }
        String explicit = System.getProperty(PATH_PROPERTY);
        Path path = explicit != null ? Path.of(explicit).toAbsolutePath() : extract();
        System.setProperty(OVERRIDE_PROPERTY, path.toString());
        loaded = path;
        return path;
    }

    private static Path extract() {
        String resource = "/native/" + platform() + "/" + fileName();
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UnsatisfiedLinkError("RapidMQ: the jar has no " + resource
                        + "; this jar was built for another platform");
            }
            Path file = Files.createTempFile("rapidmq-", "-" + fileName());
            file.toFile().deleteOnExit();
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("RapidMQ: cannot extract the native library", e);
        }
    }
}
