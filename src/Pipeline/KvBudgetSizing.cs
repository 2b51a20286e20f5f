using System.Globalization;
using System.Text.RegularExpressions;
using Pipeline.Inference.Models;
using Pipeline.Inference.Runtime;

namespace Pipeline;

/// <summary>
/// How large a host's KV memory budget is: the default, sized from the machine and the model,
/// and the budget as a person writes it (<c>--kv-budget</c>): bytes, a size with a unit, or a
/// fraction of the machine's memory.
/// </summary>
internal static partial class KvBudgetSizing
{
    /// <summary>The share of the memory beside the model's weights that the default budget takes.</summary>
    public const double DefaultFraction = 0.5;

    /// <summary>Memory the runtime may use: the machine's, or the container's limit (what the GC itself plans by).</summary>
    public static long MachineBytes() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Half of what the machine's memory leaves beside the model's weights (activations, buffers
    /// and the rest of the process live in the other half), but never less than one sequence of
    /// the full context: a host must be able to run any request its context allows.
    /// </summary>
    public static long Default(LlamaConfig config, long weightBytes, long machineBytes)
    {
        ArgumentNullException.ThrowIfNull(config);
        long oneSequence = config.SeqLen * KvCache.BytesPerPosition(config);
        long beside = Math.Max(0, machineBytes - weightBytes);
        return Math.Max(oneSequence, (long)(beside * DefaultFraction));
    }

    /// <summary>
    /// Reads a budget: whole bytes (<c>123456</c>), a size with a unit (<c>512MB</c>, <c>2GiB</c>,
    /// <c>1.5GB</c>; B, KB, MB, GB, TB are powers of 1000, KiB, MiB, GiB, TiB of 1024), or a
    /// fraction of <paramref name="machineBytes"/> (<c>0.25</c> or <c>25%</c>; a number with a
    /// decimal point and no unit is a fraction, at most 1). Throws <see cref="FormatException"/>
    /// saying what it accepts.
    /// </summary>
    public static long Parse(string text, long machineBytes)
    {
        ArgumentNullException.ThrowIfNull(text);
        var match = Size().Match(text.Trim());
        if (!match.Success || !double.TryParse(match.Groups["number"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            throw Invalid(text, "it is not a number");
        string unit = match.Groups["unit"].Value;
        bool whole = !match.Groups["number"].Value.Contains('.', StringComparison.Ordinal);
        double bytes;
        if (unit == "%")
        {
            if (number is <= 0 or > 100) throw Invalid(text, "a percentage must be above 0 and at most 100");
            bytes = machineBytes * (number / 100);
        }
        else if (unit.Length == 0 && !whole)
        {
            if (number is <= 0 or > 1) throw Invalid(text, "a fraction of the machine's memory must be above 0 and at most 1");
            bytes = machineBytes * number;
        }
        else
        {
            bytes = number * Multiplier(text, unit);
        }
        if (bytes < 1) throw Invalid(text, "a budget must be at least one byte");
        if (bytes >= long.MaxValue) throw Invalid(text, "it is too large");
        return (long)bytes;
    }

    private static double Multiplier(string text, string unit) => unit.ToUpperInvariant() switch
    {
        "" or "B" => 1,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KIB" => 1L << 10,
        "MIB" => 1L << 20,
        "GIB" => 1L << 30,
        "TIB" => 1L << 40,
        _ => throw Invalid(text, $"unknown unit '{unit}'"),
    };

    private static FormatException Invalid(string text, string why) => new(
        $"'{text}' is not a KV budget ({why}): give bytes (123456), a size (512MB, 2GiB, 1.5GB) or a fraction of the machine's memory (0.25 or 25%)");

    [GeneratedRegex(@"^(?<number>[0-9]+(\.[0-9]+)?)\s*(?<unit>%|[A-Za-z]*)$", RegexOptions.CultureInvariant)]
    private static partial Regex Size();
}
