using System.Collections.Frozen;
namespace Pipeline.Inference.Chat;

/// <summary>
/// Builds the statement tree from tokens with jinja2's grammar and operator precedence (lowest first):
/// <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons and <c>in</c>, <c>+ -</c>,
/// <c>~</c>, <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then postfix (<c>.a</c>, <c>[i]</c>,
/// <c>(args)</c>) and filters/tests (<c>|f</c>, <c>is t</c>).
/// </summary>
internal sealed partial class TemplateParser
{
    private static readonly FrozenSet<string> CompareOperators = new HashSet<string>(StringComparer.Ordinal) { "==", "!=", "<", "<=", ">", ">=" }.ToFrozenSet(StringComparer.Ordinal);

    private readonly List<TemplateToken> _tokens;
    private readonly Stack<HashSet<string>> _macroNames = new();
    private readonly Stack<string> _openBlocks = new();
    private readonly Stack<string[]> _endTagStack = new();
    private int _pos;
    private int _loopDepth;

    private TemplateParser(List<TemplateToken> tokens) => _tokens = tokens;

    public static IReadOnlyList<Stmt> Parse(string source)
    {
        var parser = new TemplateParser(TemplateLexer.Tokenize(source));
        var body = parser.Subparse(null);
        if (parser.Current.Kind != TokenKind.End) throw Fail($"unexpected {parser.Current.Describe()}", parser.Current);
        return body;
    }

    private TemplateToken Current => _tokens[_pos];

    private TemplateToken Peek => _pos + 1 < _tokens.Count ? _tokens[_pos + 1] : _tokens[^1];

    private TemplateToken Next() => _tokens[_pos < _tokens.Count - 1 ? _pos++ : _pos];

    private static ChatTemplateException Fail(string message, TemplateToken at) => ChatTemplateException.At(message, at.Line, at.Column);

    private ChatTemplateException Fail(string message) => Fail(message, Current);

    private TemplateToken Expect(TokenKind kind, string? text = null)
    {
        var token = Current;
        if (token.Kind == kind && (text is null || string.Equals(token.Text, text, StringComparison.Ordinal))) return Next();
        if (token.Kind == TokenKind.End) throw Fail($"unexpected end of template, expected {Describe(kind, text)}");
        throw Fail($"expected token {Describe(kind, text)}, got {token.Describe()}");
    }

    private static string Describe(TokenKind kind, string? text) => text is not null ? $"'{text}'" : kind switch
    {
        TokenKind.BlockEnd => "end of statement block",
        TokenKind.VariableEnd => "end of print statement",
        TokenKind.Name => "name",
        _ => kind.ToString(),
    };

    private bool SkipOperator(string op)
    {
        if (!Current.IsOperator(op)) return false;
        _pos++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        _pos++;
        return true;
    }

    private void EnsureStack()
    {
        if (!System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack()) throw Fail("the template nests too deeply to parse");
    }
}
