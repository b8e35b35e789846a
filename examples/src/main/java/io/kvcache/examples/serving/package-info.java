/**
 * Multi-turn serving over the tiered cache: a workload of users in conversation
 * ({@link io.kvcache.examples.serving.Workload}), the engine seam a CPU or GPU engine implements
 * ({@link io.kvcache.examples.serving.ServingPlatform}, {@link io.kvcache.examples.serving.ServingEngine}),
 * and the scheduler that serves the users' turns and measures each one
 * ({@link io.kvcache.examples.serving.SessionRunner}).
 */
package io.kvcache.examples.serving;
