/** Per-step measurements of a decode and the self-contained HTML page that plots them. */
package io.kvcache.examples.report;
