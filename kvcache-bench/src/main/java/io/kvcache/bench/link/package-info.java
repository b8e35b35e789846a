/** The GPU link-speed benchmark: transfer engine throughput against the link's measured ceilings. */
package io.kvcache.bench.link;
