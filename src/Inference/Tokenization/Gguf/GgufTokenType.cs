namespace Pipeline.Inference.Tokenization.Gguf;

/// <summary>Values of <c>tokenizer.ggml.token_type</c> (llama.cpp <c>llama_token_type</c>).</summary>
internal enum GgufTokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}
