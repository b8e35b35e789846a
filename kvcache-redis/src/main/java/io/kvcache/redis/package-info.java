/** A remote persistent tier on Redis (standalone or cluster), shared by every process that points at it. */
package io.kvcache.redis;
