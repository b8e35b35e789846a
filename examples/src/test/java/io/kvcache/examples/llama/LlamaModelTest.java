package io.kvcache.examples.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class LlamaModelTest {

    /** GQA (4 query heads on 2 KV heads) and a separate classifier, so both header cases are covered. */
    private static final LlamaConfig SMALL_GQA = new LlamaConfig(32, 48, 3, 4, 2, 40, 64, false);

    @Test
    void forwardPassEqualsReferenceBitForBitOnSyntheticGqaModel() {
        ByteBuffer bytes = SyntheticCheckpoint.bytes(SMALL_GQA, 7);
        assertSameAsReference(Checkpoint.parse("small", bytes), new Llama2Reference(bytes, 40), 40);
    }

    @Test
    void forwardPassEqualsReferenceBitForBitOnStories260K() throws Exception {
        var path = TestModels.stories260K();
        assertSameAsReference(Checkpoint.read(path), Llama2Reference.load(path, 128), 128);
    }

    private static void assertSameAsReference(Checkpoint cp, Llama2Reference ref, int steps) {
        LlamaModel model = new LlamaModel(cp);
        ArrayKvAttention kv = new ArrayKvAttention(cp.config(), steps);
        int token = 1;
        for (int pos = 0; pos < steps; pos++) {
            float[] expected = ref.forward(token, pos).clone();
            float[] actual = model.forward(token, pos, kv);
            assertArrayEquals(expected, actual, 0.0f, "logits at position " + pos);
            token = Sampler.argmax(expected);
        }
    }

    @Test
    void tokenOutsideVocabularyIsRejected() {
        Checkpoint cp = Checkpoint.parse("small", SyntheticCheckpoint.bytes(SMALL_GQA, 7));
        LlamaModel model = new LlamaModel(cp);
        ArrayKvAttention kv = new ArrayKvAttention(cp.config(), 4);
        var e = assertThrows(IllegalArgumentException.class, () -> model.forward(40, 0, kv));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("token 40"), e.getMessage());
    }
}
