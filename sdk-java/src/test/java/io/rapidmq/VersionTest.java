package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import org.junit.jupiter.api.Test;

/** The SDK reports the release version (kept in the root Cargo.toml) and the build's revision. */
class VersionTest {
    @Test
    void versionIsThePomsProjectVersion() {
        // Surefire passes ${project.version}; tests/dist/version.py keeps the pom equal to the
        // workspace version, so the core and the artifact agree.
        String expected = System.getProperty("rapidmq.project.version");
        assertNotNull(expected, "surefire sets rapidmq.project.version");
        assertEquals(expected, RapidMQClient.version());
    }

    @Test
    void gitRevisionIsReported() {
        String revision = RapidMQClient.gitRevision();
        assertFalse(revision.isBlank(), "a revision or \"unknown\"");
    }
}
