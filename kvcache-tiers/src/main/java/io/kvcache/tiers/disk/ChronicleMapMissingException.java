package io.kvcache.tiers.disk;

import io.kvcache.core.KvCacheException;

/**
 * The disk tier was opened in a JVM without Chronicle Map on its class path (or module path).
 *
 * <p>{@code kvcache-tiers} declares Chronicle Map {@code <optional>}: an application with no disk
 * tier does not carry it. One that opens a {@link MappedFileTier} adds the dependency named in
 * {@link ChronicleJvmFlags#CHRONICLE_MAP_ARTIFACT} itself. Nothing is created on disk before this
 * is thrown.
 */
public class ChronicleMapMissingException extends KvCacheException {
    public ChronicleMapMissingException(String message, Throwable cause) {
        super(message, cause);
    }
}
