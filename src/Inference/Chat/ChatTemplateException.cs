namespace Pipeline.Inference.Chat;

/// <summary>
/// A chat template could not be parsed or rendered. When the template itself called
/// <c>raise_exception(msg)</c>, <see cref="Exception.Message"/> is exactly <c>msg</c> and
/// <see cref="RaisedByTemplate"/> is true (the server answers 400 with it); otherwise the message names
/// the problem and, where known, its line and column in the template.
/// </summary>
public sealed class ChatTemplateException : Exception
{
    public ChatTemplateException()
    {
    }

    public ChatTemplateException(string message)
        : base(message)
    {
    }

    public ChatTemplateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal ChatTemplateException(string message, bool raisedByTemplate)
        : base(message)
    {
        RaisedByTemplate = raisedByTemplate;
    }

    /// <summary>True when the message came from the template's own <c>raise_exception</c> call.</summary>
    public bool RaisedByTemplate { get; }

    /// <summary>True once the message names a line and column; inner errors get the innermost position.</summary>
    internal bool HasPosition { get; private init; }

    internal static ChatTemplateException At(string message, int line, int column) =>
        new($"{message} (line {line}, column {column})") { HasPosition = true };
}
