/** The Redis tier's benchmark: block GET/SET through the tier against plain Lettuce to the same server. */
package io.kvcache.bench.redis;
