namespace Pipeline.Benchmarks;

/// <summary>
/// Checks that every run generated, for every request, exactly the reference run's tokens.
/// Speeds of modes that compute different things are not comparable, so this runs first.
/// </summary>
internal static class TokenAgreement
{
    /// <summary>Returns the number of completions compared; throws <see cref="TokenMismatchException"/> at the first difference.</summary>
    public static int Verify(IReadOnlyList<(string Run, IReadOnlyList<RequestTrace> Traces)> runs) => Compare(runs, abort: true).Compared;

    /// <summary>
    /// Compares every run's completions with the reference run's. With <paramref name="abort"/> the
    /// first difference throws; without, differences are counted (for measuring an engine whose
    /// invariance is switched off) and the first is described.
    /// </summary>
    public static (int Compared, int Differing, string? First) Compare(IReadOnlyList<(string Run, IReadOnlyList<RequestTrace> Traces)> runs, bool abort)
    {
        if (runs.Count == 0) return (0, 0, null);
        int differing = 0;
        string? first = null;
        var (referenceRun, reference) = runs[0];
        int compared = 0;
        foreach (var (run, traces) in runs)
        {
            if (traces.Count != reference.Count)
                throw new TokenMismatchException($"{run} ran {traces.Count} requests but {referenceRun} ran {reference.Count}");
            for (int i = 0; i < traces.Count; i++)
            {
                var expected = reference[i].CompletionIds;
                var actual = traces[i].CompletionIds;
                int differ = FirstDifference(expected, actual);
                compared++;
                if (differ < 0) continue;
                var message = $"tokens differ: request {i} under {run} vs {referenceRun} at completion index {differ} " +
                              $"({Describe(actual, differ)} vs {Describe(expected, differ)}; lengths {actual.Count} vs {expected.Count})";
                if (abort) throw new TokenMismatchException(message);
                differing++;
                first ??= message;
            }
        }
        return (compared, differing, first);
    }

    private static int FirstDifference(List<int> a, List<int> b)
    {
        int n = Math.Min(a.Count, b.Count);
        for (int i = 0; i < n; i++) if (a[i] != b[i]) return i;
        return a.Count == b.Count ? -1 : n;
    }

    private static string Describe(List<int> ids, int index) => index < ids.Count ? $"id {ids[index]}" : "end";
}
