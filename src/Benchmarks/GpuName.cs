namespace Pipeline.Benchmarks;

/// <summary>The first NVIDIA GPU's model name, as the driver reports it, for benchmark reports.</summary>
internal static class GpuName
{
    private const string DriverDirectory = "/proc/driver/nvidia/gpus";

    public static string? Current()
    {
        if (!Directory.Exists(DriverDirectory)) return null;
        foreach (var gpu in Directory.EnumerateDirectories(DriverDirectory).Order(StringComparer.Ordinal))
        {
            var info = Path.Combine(gpu, "information");
            if (!File.Exists(info)) continue;
            foreach (var line in File.ReadLines(info))
                if (line.StartsWith("Model:", StringComparison.Ordinal)) return line["Model:".Length..].Trim();
        }
        return null;
    }
}
