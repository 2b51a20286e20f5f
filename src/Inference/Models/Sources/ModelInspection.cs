namespace Pipeline.Inference.Models.Sources;

/// <summary>
/// What <c>pipeline inspect</c> reports about a model path: read from headers and small JSON
/// files only, never the weights.
/// </summary>
/// <param name="Path">The file or folder that was inspected.</param>
/// <param name="Format">How the path was recognised.</param>
/// <param name="Architecture">"llama", "mistral", "qwen2" or "qwen3".</param>
/// <param name="ParameterCount">Weights as stored (a shared classifier counted once).</param>
/// <param name="DTypes">Element types of the stored weights, e.g. ["BF16"] or ["F32", "Q8_0"].</param>
/// <param name="ContextLength">The context the runner will use: the model's, capped by the load options.</param>
/// <param name="MaxContextLength">The model's own context limit (max_position_embeddings, GGUF context_length).</param>
/// <param name="TokenizerKind">What will tokenize, e.g. "tokenizer.json (BPE, byte-level)", "GGUF llama", "llama2.c tokenizer.bin", or "none".</param>
/// <param name="HasChatTemplate">Whether a chat template ships with the model.</param>
/// <param name="EndTokenIds">End-of-generation ids the model's configuration states (the tokenizer's eos is added by the tokenizer).</param>
/// <param name="Config">The full decoder description.</param>
internal sealed record ModelInspection(
    string Path,
    ModelFormat Format,
    string Architecture,
    long ParameterCount,
    IReadOnlyList<string> DTypes,
    int ContextLength,
    int MaxContextLength,
    string TokenizerKind,
    bool HasChatTemplate,
    IReadOnlyList<int> EndTokenIds,
    LlamaConfig Config);
