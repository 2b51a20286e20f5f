using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Pipeline.Inference.Models;
using Pipeline.Inference.Models.Sources;

namespace Pipeline.Inference.Onnx;

/// <summary>
/// Converts a model (llama2.c checkpoint, Hugging Face folder, GGUF file) to the runner's ONNX graph
/// on first use and keeps the result on disk. The file name carries a key over the source files
/// (see <see cref="CacheKey"/>), the context cap, the converter version and the converter
/// assembly's identity, so a changed model or a rebuilt converter never reads a stale graph.
/// </summary>
public static class OnnxModelCache
{
    public const string CacheDirectoryVariable = "PIPELINE_CACHE_DIR";

    /// <summary>Source files up to this size are hashed whole; larger ones by header, size and modification time.</summary>
    internal const long FullHashLimitBytes = 64L << 20;
    private const int HeaderHashBytes = 1 << 20;

    public static string DefaultDirectory =>
        Environment.GetEnvironmentVariable(CacheDirectoryVariable) is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create) is { Length: > 0 } local ? local : Path.GetTempPath(), "pipeline", "onnx");

    /// <summary>
    /// Returns the path of the runner's ONNX graph for the llama2.c checkpoint
    /// <paramref name="checkpointPath"/> (new positions out, no <c>present.*</c> copies), converting if needed.
    /// </summary>
    public static string GetOrConvert(string checkpointPath, string? cacheDirectory = null) =>
        GetOrConvert(ModelSource.Detect(checkpointPath), maxContext: null, cacheDirectory);

    /// <summary>
    /// Returns the path of the runner's ONNX graph for <paramref name="source"/> with its context
    /// capped at <paramref name="maxContext"/>, converting (one tensor at a time) if needed. An
    /// ONNX source is returned as it is.
    /// </summary>
    internal static string GetOrConvert(ModelSource source, int? maxContext, string? cacheDirectory = null) =>
        GetOrConvert(source, maxContext, cacheDirectory, extendContextTo: null);

    /// <summary>As <see cref="GetOrConvert(ModelSource, int?, string?)"/>, with the weights stored as <paramref name="quantization"/> says.</summary>
    internal static string GetOrConvert(ModelSource source, int? maxContext, WeightQuantization quantization, string? cacheDirectory = null) =>
        GetOrConvert(source, maxContext, cacheDirectory, extendContextTo: null, quantization);

    /// <summary>As <see cref="GetOrConvert(ModelSource, int?, string?)"/>, with attention computed as <paramref name="attention"/> says.</summary>
    internal static string GetOrConvert(ModelSource source, int? maxContext, AttentionKernel attention, string? cacheDirectory = null) =>
        GetOrConvert(source, maxContext, cacheDirectory, extendContextTo: null, attention: attention);

    /// <summary>
    /// As the public overload; <paramref name="extendContextTo"/> sets the context past the model's
    /// stated one, as llama.cpp's <c>-c</c> may. Needed for llama.cpp's stories260K GGUF, whose
    /// converter wrote context_length 128 for a model llama2.c runs (and the reference decodes) to 256.
    /// </summary>
    internal static string GetOrConvert(ModelSource source, int? maxContext, string? cacheDirectory, int? extendContextTo,
        WeightQuantization quantization = WeightQuantization.None, AttentionKernel attention = AttentionKernel.GroupQuery)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Format == ModelFormat.Onnx) return source.ModelPath;
        var key = CacheKey(source, maxContext, extendContextTo, quantization, attention);
        var dir = cacheDirectory ?? DefaultDirectory;
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"{source.Name}-{key}.onnx");
        if (File.Exists(path)) return path;

        // Write beside the target and rename, data file first: concurrent processes never read a
        // half-written graph, and a graph never names a data file that is not complete.
        var unique = $"{Environment.ProcessId}.{Guid.NewGuid():N}";
        var temp = $"{path}.{unique}.tmp";
        var dataPath = path + ".data";
        var tempData = $"{dataPath}.{unique}.tmp";
        try
        {
            using (var opened = source.OpenWeights(maxContext))
            {
                var weights = extendContextTo is int context ? new ContextOverrideSource(opened, context) : opened;
                var written = LlamaOnnxExporter.Write(weights, temp, optimumOutputs: false,
                    externalDataPath: tempData, externalDataLocation: Path.GetFileName(dataPath), quantization: quantization, attention: attention);
                if (written is not null) File.Move(tempData, dataPath, overwrite: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
            if (File.Exists(tempData)) File.Delete(tempData);
        }
        // The conversion leaves up to a few hundred MB of dead tensor arrays per large tensor; give
        // them back to the OS now, before the session maps the weights, rather than carrying them
        // beside a multi-GB model (once per conversion, so the pause does not matter).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return path;
    }

    /// <summary>
    /// A key that changes whenever the converted graph would. Small files (llama2.c checkpoints,
    /// config.json, tiny models) are hashed whole. A multi-GB weight file is not: hashing it would
    /// read gigabytes on every start. Its first megabyte (the safetensors JSON header with every
    /// tensor's dtype, shape and offsets; the GGUF header and metadata), its length and its
    /// last-write time go in instead: rewriting or replacing a file changes its write time, and a
    /// different model of the same name differs in header or length. A copy that preserves the
    /// write time of a same-sized, same-header file is the case this does not see.
    /// </summary>
    internal static string CacheKey(ModelSource source, int? maxContext, int? extendContextTo = null, WeightQuantization quantization = WeightQuantization.None,
        AttentionKernel attention = AttentionKernel.GroupQuery)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{source.Format}|context={maxContext}|extend={extendContextTo}|")));
        // Float32 graphs keep the key they had before quantization existed.
        if (quantization != WeightQuantization.None) hash.AppendData(Encoding.UTF8.GetBytes($"quantize={quantization}|"));
        hash.AppendData(Encoding.UTF8.GetBytes($"attention={attention}|"));
        foreach (var file in source.DefiningFiles)
        {
            var info = new FileInfo(file);
            if (!info.Exists) throw new FileNotFoundException($"model file '{file}' is missing", file);
            hash.AppendData(Encoding.UTF8.GetBytes($"{info.Name}|{info.Length.ToString(CultureInfo.InvariantCulture)}|"));
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            if (info.Length <= FullHashLimitBytes)
            {
                hash.AppendData(SHA256.HashData(stream));
            }
            else
            {
                var header = new byte[HeaderHashBytes];
                int read = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
                hash.AppendData(header.AsSpan(0, read));
                hash.AppendData(BitConverter.GetBytes(info.LastWriteTimeUtc.Ticks));
            }
        }
        hash.AppendData(Encoding.UTF8.GetBytes(LlamaOnnxExporter.ConverterVersion));
        hash.AppendData(typeof(LlamaOnnxExporter).Assembly.ManifestModule.ModuleVersionId.ToByteArray());
        return Convert.ToHexString(hash.GetHashAndReset())[..16].ToLowerInvariant();
    }
}
