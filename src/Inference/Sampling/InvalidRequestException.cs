namespace Pipeline.Inference.Sampling;

/// <summary>
/// A request carried a value outside its allowed range. <see cref="ArgumentException.ParamName"/> is the
/// option's wire name (snake_case, e.g. "top_p") so the API layer can report it to the client as is.
/// </summary>
public sealed class InvalidRequestException : ArgumentException
{
    public InvalidRequestException(string optionName, string message)
        : base(message, optionName)
    {
    }
}
