/** A Llama-2 forward pass as llama2.c defines it: checkpoint reader, weights, forward pass and sampler. */
package io.kvcache.examples.llama;
