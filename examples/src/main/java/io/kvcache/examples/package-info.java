/** Runnable programs that show the tiered KV cache at work on a real model. */
package io.kvcache.examples;
