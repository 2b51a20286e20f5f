namespace Pipeline.Inference.Text;

/// <summary>How an exception's message is shown on one line (the CLI, the server, the CUDA fallback note).</summary>
internal static class ExceptionText
{
    /// <summary>The first line of <paramref name="message"/>, trimmed.</summary>
    public static string FirstLine(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return message.Split('\n')[0].Trim();
    }

    /// <summary>
    /// An <see cref="ArgumentException"/>'s message without the " (Parameter 'x')" that .NET
    /// appends: callers report the parameter in a field of its own.
    /// </summary>
    public static string WithoutParameterSuffix(ArgumentException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception.ParamName is null ? exception.Message
            : exception.Message.Replace($" (Parameter '{exception.ParamName}')", "", StringComparison.Ordinal);
    }
}
