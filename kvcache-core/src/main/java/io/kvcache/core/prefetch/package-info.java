/** Declared access patterns that the manager turns into promotions issued ahead of use. */
package io.kvcache.core.prefetch;
