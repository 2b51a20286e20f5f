namespace Pipeline.Inference.Models;

/// <summary>
/// The float32 weights of a Llama decoder in llama2.c's layout: every projection matrix is stored
/// [out, in] row-major, layers stacked along the first axis.
/// </summary>
public sealed class LlamaWeights
{
    public required LlamaConfig Config { get; init; }
    public required float[] TokenEmbedding { get; init; }   // [vocab, dim]
    public required float[] RmsAttention { get; init; }     // [layers, dim]
    public required float[] Wq { get; init; }               // [layers, dim, dim]
    public required float[] Wk { get; init; }               // [layers, kv_dim, dim]
    public required float[] Wv { get; init; }               // [layers, kv_dim, dim]
    public required float[] Wo { get; init; }               // [layers, dim, dim]
    public required float[] RmsFfn { get; init; }           // [layers, dim]
    public required float[] W1 { get; init; }               // [layers, hidden, dim]
    public required float[] W2 { get; init; }               // [layers, dim, hidden]
    public required float[] W3 { get; init; }               // [layers, hidden, dim]
    public required float[] RmsFinal { get; init; }         // [dim]
    public required float[] Classifier { get; init; }       // [vocab, dim]; the embedding itself when shared
}
