using System.Security.Cryptography;
using Pipeline.Inference.Models;

namespace Pipeline.Inference.Onnx;

/// <summary>
/// Converts a llama2.c checkpoint to ONNX on first use and keeps the result on disk. The file name
/// carries a hash of the checkpoint bytes, the converter version and the converter assembly's
/// identity, so a changed checkpoint or a rebuilt converter never reads a stale graph.
/// </summary>
public static class OnnxModelCache
{
    public const string CacheDirectoryVariable = "PIPELINE_CACHE_DIR";

    public static string DefaultDirectory =>
        Environment.GetEnvironmentVariable(CacheDirectoryVariable) is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create) is { Length: > 0 } local ? local : Path.GetTempPath(), "pipeline", "onnx");

    /// <summary>
    /// Returns the path of the runner's ONNX graph for <paramref name="checkpointPath"/> (new
    /// positions out, no <c>present.*</c> copies), converting if needed.
    /// </summary>
    public static string GetOrConvert(string checkpointPath, string? cacheDirectory = null)
    {
        var bytes = File.ReadAllBytes(checkpointPath);
        var key = CacheKey(bytes);
        var dir = cacheDirectory ?? DefaultDirectory;
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(checkpointPath)}-{key}.onnx");
        if (File.Exists(path)) return path;

        var weights = Llama2Checkpoint.Parse(bytes, checkpointPath);
        // Write beside the target and rename: concurrent processes never read a half-written file.
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            LlamaOnnxExporter.Write(weights, temp, optimumOutputs: false);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        return path;
    }

    internal static string CacheKey(ReadOnlySpan<byte> checkpoint)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(checkpoint);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes(LlamaOnnxExporter.ConverterVersion));
        hash.AppendData(typeof(LlamaOnnxExporter).Assembly.ManifestModule.ModuleVersionId.ToByteArray());
        return Convert.ToHexString(hash.GetHashAndReset())[..16].ToLowerInvariant();
    }
}
