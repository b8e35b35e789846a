/** Runs the model's decode against the tiered cache: windows of pinned blocks, prefetch ahead, requests with prefix reuse. */
package io.kvcache.examples.engine;
