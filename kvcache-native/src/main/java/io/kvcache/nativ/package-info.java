/** Native library loading shared by the libc and CUDA bindings. */
package io.kvcache.nativ;
