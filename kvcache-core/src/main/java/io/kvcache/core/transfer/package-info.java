/** The transfer SPI: batched block copies between tiers with completion handles, and a CPU engine. */
package io.kvcache.core.transfer;
