namespace Pipeline.Inference.Chat;

/// <summary>
/// Jinja2's default <c>Undefined</c>: a missing variable, attribute or item. It prints as the empty
/// string, is falsy, has length 0 and iterates as empty; arithmetic, calls, attribute or item access on
/// it raise an error carrying <see cref="Message"/> (as jinja2's <c>UndefinedError</c> does).
/// </summary>
internal sealed class Undefined
{
    private Undefined(string message) => Message = message;

    /// <summary>The error raised when this value is used where a value is required.</summary>
    public string Message { get; }

    public static Undefined Named(string name) => new($"'{name}' is undefined");

    public static Undefined Missing(object? owner, object? key)
    {
        string ownerText = owner is null ? "'None'" : $"'{PyOps.TypeName(owner)} object'";
        return key is string s
            ? new Undefined($"{ownerText} has no attribute '{s}'")
            : new Undefined($"{ownerText} has no element {PyOps.Repr(key)}");
    }

    public static Undefined WithMessage(string message) => new(message);

    public ChatTemplateException Error() => new(Message);
}
