/** JNA bindings to the CUDA driver API: contexts, memory, streams, events and the block-copy kernels. */
package io.kvcache.nativ.cuda;
