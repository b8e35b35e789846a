/** Decode attention over K/V held in cache blocks: the backend seam (CPU, CUDA) and online softmax. */
package io.kvcache.examples.attention;
