package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The native library comes out of the jar's resources and the bindings use it. */
class NativeLibraryTest {
    @Test
    void theBundledLibraryIsExtractedAndHandedToTheBindings() {
        String resource = "/native/" + NativeLibrary.platform() + "/librapidmq_uniffi.so";
        assertNotNull(NativeLibrary.class.getResource(resource), resource + " is bundled");
        Path path = NativeLibrary.load();
        assertTrue(Files.isRegularFile(path));
        assertTrue(path.isAbsolute());
        assertEquals(path.toString(), System.getProperty(NativeLibrary.OVERRIDE_PROPERTY));
        assertEquals(path, NativeLibrary.load(), "loaded once");
        // The bindings work through it.
        assertEquals(1000, ProducerConfig.of("t").maxBatchMessages());
    }
}
