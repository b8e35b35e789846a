/** JNA bindings to the C library: memory mapping, locking, memfd and ioctl. */
package io.kvcache.nativ.libc;
