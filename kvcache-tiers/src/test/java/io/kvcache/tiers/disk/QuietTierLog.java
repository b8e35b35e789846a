package io.kvcache.tiers.disk;

import java.util.logging.Logger;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Keeps the disk tier's log lines (hundreds, in tests that break things on purpose) off the
 * console for one test class; handlers a test adds itself still receive them.
 */
final class QuietTierLog implements BeforeAllCallback, AfterAllCallback {
    // a strong reference: java.util.logging holds loggers weakly
    private static final Logger LOG = Logger.getLogger(MappedFileTier.class.getName());

    @Override
    public void beforeAll(ExtensionContext context) {
        LOG.setUseParentHandlers(false);
    }

    @Override
    public void afterAll(ExtensionContext context) {
        LOG.setUseParentHandlers(true);
    }
}
