using Pipeline.Testing;

namespace Pipeline.Integration;

/// <summary>
/// The float16 graph's models by name: the embedded stories260K (head_dim 8, too narrow for
/// GroupQueryAttention to rotate, so its graph keeps rotary nodes and unpacked q, k, v), and a tiny
/// random llama2.c model with head_dim 16, whose graph feeds the attention one packed product that
/// the kernel rotates itself, as the 110M and 1.1B shapes do on CUDA. It shares stories260K's tokenizer.
/// </summary>
internal static class WideHeadModel
{
    public const string Stories260K = "stories260K";
    public const string HeadDim16 = "head_dim 16";
    /// <summary>As <see cref="HeadDim16"/> with a vocabulary of 32,768: a part's logits run to megabytes, as a real model's do.</summary>
    public const string Vocabulary32K = "vocab 32768";

    private static readonly Lazy<string> Folder = new(() => Write("pipeline-wide-head", 512));
    private static readonly Lazy<string> WideVocabulary = new(() => Write("pipeline-wide-vocab", 32768));

    public static string Directory(string name) => name switch
    {
        Stories260K => RepoPaths.ModelDir,
        HeadDim16 => Folder.Value,
        Vocabulary32K => WideVocabulary.Value,
        _ => throw new ArgumentException($"no test model '{name}'", nameof(name)),
    };

    private static string Write(string name, int vocabulary)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"{name}-{Environment.ProcessId}");
        var spec = new TinySpec { Dim = 64, Hidden = 96, Layers = 2, Heads = 4, KvHeads = 2, Vocab = vocabulary, MaxPositions = 512, RopeTheta = 10000f, Seed = 16 };
        TinyModelFiles.WriteLlama2c(new TinyModel(spec), folder);
        File.Copy(Path.Combine(RepoPaths.ModelDir, "tok512.bin"), Path.Combine(folder, "tok512.bin"), overwrite: true);
        return folder;
    }
}
