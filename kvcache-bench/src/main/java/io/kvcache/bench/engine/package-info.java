/** The GPU Llama engine benchmark: prefill, decode and restore against ceilings measured in the same run. */
package io.kvcache.bench.engine;
