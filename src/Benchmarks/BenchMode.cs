namespace Pipeline.Benchmarks;

/// <summary>The serving strategies compared on one model and one workload.</summary>
internal enum BenchMode
{
    /// <summary>One request at a time: prefill, then decode steps of batch 1.</summary>
    Serial,
    /// <summary>Every request on its own task, every model call behind one lock, no batching.</summary>
    GlobalLock,
    /// <summary>The actor pipeline (PipelineHost), batching decode steps across requests.</summary>
    Pipeline,
}

internal static class BenchModes
{
    public static IReadOnlyList<BenchMode> All { get; } = [BenchMode.Serial, BenchMode.GlobalLock, BenchMode.Pipeline];

    public static string Name(BenchMode mode) => mode switch
    {
        BenchMode.Serial => "serial",
        BenchMode.GlobalLock => "global-lock",
        BenchMode.Pipeline => "pipeline",
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    /// <summary>Parses "serial,global-lock,pipeline" (any subset, any order).</summary>
    public static IReadOnlyList<BenchMode> Parse(string text)
    {
        var modes = new List<BenchMode>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var mode = All.FirstOrDefault(m => string.Equals(Name(m), part, StringComparison.OrdinalIgnoreCase), (BenchMode)(-1));
            if (mode == (BenchMode)(-1)) throw new ArgumentException($"unknown mode '{part}' (serial, global-lock, pipeline)");
            if (!modes.Contains(mode)) modes.Add(mode);
        }
        return modes.Count > 0 ? modes : throw new ArgumentException("no modes given");
    }
}
