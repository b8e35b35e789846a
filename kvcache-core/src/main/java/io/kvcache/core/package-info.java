/** The cache manager: sequences, residency handles, block tables and the exceptions an engine acts on. */
package io.kvcache.core;
