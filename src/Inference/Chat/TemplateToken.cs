namespace Pipeline.Inference.Chat;

internal enum TokenKind
{
    /// <summary>Literal template text, whitespace control already applied.</summary>
    Data,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

/// <summary>One lexical token; <see cref="Value"/> holds the text (operators, names, data) or the literal value.</summary>
internal readonly record struct TemplateToken(TokenKind Kind, string Text, object? Value, int Line, int Column)
{
    public bool Is(TokenKind kind, string text) => Kind == kind && string.Equals(Text, text, StringComparison.Ordinal);

    public bool IsName(string name) => Is(TokenKind.Name, name);

    public bool IsOperator(string op) => Is(TokenKind.Operator, op);

    public string Describe() => Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.BlockEnd => "end of statement block",
        TokenKind.VariableEnd => "end of print statement",
        TokenKind.Data => "template data",
        TokenKind.String => "string",
        _ => $"'{Text}'",
    };
}
