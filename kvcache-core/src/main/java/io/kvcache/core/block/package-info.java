/** Content addressing of full blocks: chained SHA-256 keys. */
package io.kvcache.core.block;
