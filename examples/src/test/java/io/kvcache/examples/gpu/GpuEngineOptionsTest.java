package io.kvcache.examples.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** What needs no GPU: named shapes, their sizes, and the error that names a missing cuBLAS. */
class GpuEngineOptionsTest {

    @Test
    void namedShapesAreTheLlama3Shapes() {
        ModelShape s = ModelShape.named("llama3-8b");
        assertEquals(4096, s.dim());
        assertEquals(14336, s.hidden());
        assertEquals(32, s.layers());
        assertEquals(128, s.headSize());
        assertEquals(1024, s.kvDim());
        assertEquals(500000f, s.ropeTheta());
        // 32 x (6144 x 4096 + 4096^2 + 3 x 14336 x 4096) + 128256 x 4096: the 8B's projections and classifier
        assertEquals(7_504_658_432L, s.matmulParams());
        ModelShape slice = ModelShape.named("llama3-70b-slice:8");
        assertEquals(8192, slice.dim());
        assertEquals(8, slice.layers());
        assertEquals(64, slice.heads());
        assertEquals(28672, slice.hidden());
    }

    @Test
    void unknownShapeIsRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelShape.named("gpt-5"));
        assertTrue(e.getMessage().contains("'gpt-5'") && e.getMessage().contains("llama3-8b"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new ModelShape("odd", 4096, 14336, 32, 32, 8, 128256, 0.5f, false));
    }

    @Test
    void missingCublasNamesThePathTriedAndTheSetting() {
        CublasUnavailableException e = assertThrows(CublasUnavailableException.class,
                () -> Cublas.load("/nonexistent/libcublas.so.13", null));
        assertTrue(e.getMessage().contains("/nonexistent/libcublas.so.13"), e.getMessage());
        assertTrue(e.getMessage().contains(Cublas.LIBRARY_PROPERTY), e.getMessage());
        e = assertThrows(CublasUnavailableException.class, () -> Cublas.load(null, "/also/missing/libcublas.so"));
        assertTrue(e.getMessage().contains("/also/missing/libcublas.so"), e.getMessage());
    }
}
