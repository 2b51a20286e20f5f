namespace Pipeline.Properties.Scheduling;

/// <summary>
/// How many cases a property runs: its default (sized so the whole suite stays under five minutes
/// on two cores) times the factor in PIPELINE_PROPERTY_RUNS when set (e.g. 50 for a long run).
/// </summary>
public static class PropertyBudget
{
    public const string Variable = "PIPELINE_PROPERTY_RUNS";

    public static int Cases(int defaultCases) =>
        int.TryParse(Environment.GetEnvironmentVariable(Variable), out var factor) && factor > 0 ? defaultCases * factor : defaultCases;

    /// <summary>Scales a minimum-exploration threshold with the case count, so long runs must explore more.</summary>
    public static int Factor => int.TryParse(Environment.GetEnvironmentVariable(Variable), out var factor) && factor > 0 ? factor : 1;
}
