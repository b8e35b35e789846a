/**
 * Content addressing of full blocks: chained SHA-256 keys.
 *
 * <p>A sealed block's key is {@code SHA-256(parent key, its token ids, layout fingerprint, model
 * id, tenant salt)}, so equal keys mean equal prefixes, hence equal K/V, for the same model,
 * layout and tenant. The chain makes a block's key depend on every token before it. The salt
 * limits sharing to one tenant (see the overview's "Tenant salt"). A 64-bit hash is never used: a
 * collision would serve one prompt another's K/V.
 */
package io.kvcache.core.block;
