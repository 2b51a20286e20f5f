namespace Pipeline.Inference.Models;

/// <summary>
/// What a tensor is in a Llama-family decoder. Shapes are stated in llama2.c's layout, which every
/// weight source yields: matrices [out, in] row-major, q and k rows in interleaved RoPE pairs.
/// </summary>
internal enum WeightRole
{
    TokenEmbedding,   // [vocab, dim]
    AttentionNorm,    // [dim], per layer
    Wq,               // [heads * head_dim, dim], per layer
    Wk,               // [kv_heads * head_dim, dim], per layer
    Wv,               // [kv_heads * head_dim, dim], per layer
    Wo,               // [dim, heads * head_dim], per layer
    QBias,            // [heads * head_dim], per layer, when AttentionBias
    KBias,            // [kv_heads * head_dim], per layer, when AttentionBias
    VBias,            // [kv_heads * head_dim], per layer, when AttentionBias
    QNorm,            // [head_dim], per layer, when QkNorm
    KNorm,            // [head_dim], per layer, when QkNorm
    FfnNorm,          // [dim], per layer
    W1,               // gate: [hidden, dim], per layer
    W2,               // down: [dim, hidden], per layer
    W3,               // up: [hidden, dim], per layer
    FinalNorm,        // [dim]
    Classifier,       // [vocab, dim]; the embedding itself when the classifier is shared
    RopeFrequencyFactors, // [head_dim / 2]: divisors of the RoPE frequencies (GGUF rope_freqs), optional
}
