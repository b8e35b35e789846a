package io.kvcache.examples.llama;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/** A model id for content keys: a checkpoint's SHA-256, so blocks of other weights never match. */
public final class ModelId {
    private ModelId() {
    }

    /** @return {@code llama2c-} and the first 16 bytes, in hex, of the SHA-256 of the shape and every weight */
    public static String of(Checkpoint cp) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(cp.config().toString().getBytes(StandardCharsets.UTF_8));
            LlamaWeights w = cp.weights();
            for (float[] a : List.of(w.tokenEmbedding(), w.rmsAtt(), w.wq(), w.wk(), w.wv(), w.wo(), w.rmsFfn(),
                    w.w1(), w.w2(), w.w3(), w.rmsFinal(), w.classifier())) {
                ByteBuffer b = ByteBuffer.allocate(a.length * 4);
                b.asFloatBuffer().put(a);
                md.update(b.array());
            }
            return "llama2c-" + HexFormat.of().formatHex(md.digest(), 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }
}
