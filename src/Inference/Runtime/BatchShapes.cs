using System.Globalization;

namespace Pipeline.Inference.Runtime;

/// <summary>Which actor makes a model call: prompt chunks (prefill) or one new token per row (decode).</summary>
internal enum StepKind
{
    Decode,
    Prefill,
}

/// <summary>
/// The shapes a model call is padded to, so that no kernel sees a shape that depends on what else
/// runs. On the CPU none is needed (ONNX Runtime's CPU kernels give a row the same bits at any batch
/// size: P6). On CUDA, cuBLAS chooses its GEMM algorithm, and with it the order of a dot product's
/// additions, by the problem's shape, so a row's logits depend on how many rows share the call
/// (measured on an H200: docs/PERFORMANCE.md). Padding every call of one kind to the same shapes
/// makes each row's arithmetic the same alone or batched: rows are padded to a fixed count, new
/// tokens of a prefill call to whole attention blocks, and the past to a fixed number of blocks.
/// </summary>
/// <param name="DecodeRows">Rows of every decode call (real rows first, then padding); 0 = no padding.
/// A larger decode batch runs as several calls of this many rows.</param>
/// <param name="PrefillRows">Rows of every prefill call; 0 = no padding.</param>
/// <param name="PadPrefillToBlock">Pad a prefill call's new tokens to whole attention blocks.</param>
/// <param name="PastToContext">Pad every row's past to the whole context (in blocks), not to the batch's longest past.</param>
internal sealed record BatchShapes(int DecodeRows, int PrefillRows, bool PadPrefillToBlock, bool PastToContext)
{
    /// <summary>
    /// Rows of a second, smaller decode call over a resident part's first slots, run when a call's
    /// rows all sit there (0: none). Only for a graph and device where a row's bits in it are the
    /// <see cref="DecodeRows"/> call's: measured, not assumed (docs/PERFORMANCE.md, "Session 22").
    /// </summary>
    public int SmallDecodeRows { get; init; }

    /// <summary>No padding: each call is as large as its rows (the CPU's choice; P6 proves it exact).</summary>
    public static BatchShapes Exact { get; } = new(0, 0, false, false);

    public bool IsExact => DecodeRows == 0 && PrefillRows == 0 && !PadPrefillToBlock && !PastToContext;

    /// <summary>The fixed row count of a call of <paramref name="kind"/>, or 0 when its rows are not padded.</summary>
    public int FixedRows(StepKind kind) => kind == StepKind.Prefill ? PrefillRows : DecodeRows;

    /// <summary>
    /// The rows a call of <paramref name="kind"/> with <paramref name="rows"/> real rows is padded
    /// to. A batch larger than the fixed count is run as several calls of that count (the model
    /// splits it), so every call of a kind has the same rows.
    /// </summary>
    public int Rows(StepKind kind, int rows) => Math.Max(rows, FixedRows(kind));

    /// <summary>The new tokens per row of a call whose longest row feeds <paramref name="maxNew"/>.</summary>
    public int NewTokens(StepKind kind, int maxNew, int block) =>
        kind == StepKind.Prefill && PadPrefillToBlock ? (maxNew + block - 1) / block * block : maxNew;

    /// <summary>The past stride (positions per row) for a call of <paramref name="kind"/> whose longest past is <paramref name="maxPast"/>.</summary>
    /// <remarks>
    /// A prefill call whose rows all start their prompts has no past at all, even when pasts are
    /// padded to the context: the model runs such rows apart from continuing ones (a mixed call
    /// becomes two), so a prompt's first chunk always has this one shape, without staging or
    /// attending over a context of padding.
    /// </remarks>
    public int Past(StepKind kind, int maxPast, int block, int context)
    {
        int needed = (maxPast + block - 1) / block * block;
        if (!PastToContext || (kind == StepKind.Prefill && maxPast == 0)) return needed;
        // The largest past a call can have (context minus the token it feeds), in whole blocks.
        return Math.Max(needed, (context - 1 + block - 1) / block * block);
    }

    /// <summary>
    /// Parses "exact" or a comma list such as "decode=64,small=8,prefill=4,block,context" (the
    /// <c>--batch-shapes</c> option); "cuda" names <paramref name="cudaDefault"/>.
    /// </summary>
    public static BatchShapes Parse(string text, BatchShapes cudaDefault)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        ArgumentNullException.ThrowIfNull(cudaDefault);
        var trimmed = text.Trim().ToLowerInvariant();
        if (trimmed is "exact" or "none" or "off") return Exact;
        if (trimmed == "cuda") return cudaDefault;
        var shapes = Exact;
        foreach (var part in trimmed.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2, StringSplitOptions.TrimEntries);
            int Value() => kv.Length == 2 && int.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v is > 0 and <= 4096
                ? v : throw new ArgumentException($"--batch-shapes: '{part}' needs a row count between 1 and 4096");
            shapes = kv[0] switch
            {
                "decode" => shapes with { DecodeRows = Value() },
                "small" => shapes with { SmallDecodeRows = Value() },
                "prefill" => shapes with { PrefillRows = Value() },
                "block" => shapes with { PadPrefillToBlock = true },
                "context" => shapes with { PastToContext = true },
                _ => throw new ArgumentException($"--batch-shapes: unknown part '{part}' (exact, cuda, or decode=N,small=N,prefill=N,block,context)"),
            };
        }
        return shapes;
    }

    public override string ToString() => IsExact ? "exact"
        : string.Join(',', new[]
        {
            DecodeRows > 0 ? $"decode={DecodeRows}" : null,
            SmallDecodeRows > 0 ? $"small={SmallDecodeRows}" : null,
            PrefillRows > 0 ? $"prefill={PrefillRows}" : null,
            PadPrefillToBlock ? "block" : null,
            PastToContext ? "context" : null,
        }.Where(p => p is not null));
}
