/** The LongContextDemo program: command line, tier setup, progress bar and summary. */
package io.kvcache.examples.demo;
