/** Benchmarks: each measures its own ceiling in the same run and reports a ratio to it. */
package io.kvcache.bench;
