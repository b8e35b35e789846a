/** The tier SPI: pools of fixed-size block slots in one kind of memory, and their bookkeeping. */
package io.kvcache.core.tier;
