/** The shape of the KV cache and the byte layout of one block. */
package io.kvcache.core.layout;
