package io.kvcache.examples.engine;

/** Told after every position a request runs through the model. Called on the decoding thread. */
@FunctionalInterface
public interface StepListener {
    /** Does nothing. */
    StepListener NONE = (pos, done, total, nanos) -> { };

    /**
     * @param pos   position just computed
     * @param done  positions computed so far in this request
     * @param total positions the request will compute
     * @param nanos time of this position, in ns, including waits for residency
     */
    void onStep(int pos, int done, int total, long nanos);
}
