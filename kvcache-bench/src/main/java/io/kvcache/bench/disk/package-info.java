/** Disk tier throughput against plain sequential file I/O on the same file system, in the same run. */
package io.kvcache.bench.disk;
