using System.CommandLine;

namespace Pipeline.Cli;

/// <summary><c>--kv-budget</c>, shared by generate, serve and bench.</summary>
internal static class KvBudgetOption
{
    public const string Name = "--kv-budget";

    public static Option<string?> Create() => new(Name)
    {
        Description = "KV cache memory the host's requests may reserve at once: bytes (123456), a size (512MB, 2GiB, 1.5GB) or a fraction of the machine's memory (0.25 or 25%); "
            + "each request reserves prompt + max_tokens positions and waits while the budget is short "
            + "(default: half of the machine's memory beside the model's weights, at least one full-context sequence)",
    };

    /// <summary>The budget in bytes, or null for the host's default; a bad value is an error naming the option.</summary>
    public static long? Parse(string? value)
    {
        if (value is null) return null;
        try
        {
            return KvBudgetSizing.Parse(value, KvBudgetSizing.MachineBytes());
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"{Name}: {e.Message}", e);
        }
    }
}
