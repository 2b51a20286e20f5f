namespace Pipeline.Inference.Models.Sources;

/// <summary>The file formats a model path can hold.</summary>
internal enum ModelFormat
{
    /// <summary>A llama2.c checkpoint (<c>*.bin</c>) beside a llama2.c <c>tokenizer.bin</c>.</summary>
    Llama2c,

    /// <summary>A Hugging Face folder: <c>config.json</c> and <c>model.safetensors</c> or sharded safetensors with an index.</summary>
    HuggingFace,

    /// <summary>A GGUF file (llama.cpp), or a folder holding exactly one.</summary>
    Gguf,

    /// <summary>A <c>model.onnx</c> this project's converter wrote (<c>pipeline convert</c>).</summary>
    Onnx,
}
