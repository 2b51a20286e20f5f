namespace Pipeline.Cli;

/// <summary>The value of an on|off switch such as <c>--resident-kv</c> or <c>--cuda-graph</c>.</summary>
internal static class OnOff
{
    /// <summary>Null when the option is absent (the default applies); a bad value names the option.</summary>
    public static bool? Parse(string option, string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null => null,
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        _ => throw new ArgumentException($"{option}: '{value}' is not on or off"),
    };
}
