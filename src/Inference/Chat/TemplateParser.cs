using System.Collections.Frozen;
namespace Pipeline.Inference.Chat;

/// <summary>
/// Builds the statement tree from tokens with jinja2's grammar and operator precedence (lowest first):
/// <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons and <c>in</c>, <c>+ -</c>,
/// <c>~</c>, <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then postfix (<c>.a</c>, <c>[i]</c>,
/// <c>(args)</c>) and filters/tests (<c>|f</c>, <c>is t</c>).
/// </summary>
internal sealed class TemplateParser
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

    private List<Stmt> Subparse(string[]? endTags)
    {
        if (endTags is null) return SubparseUntil(null);
        _endTagStack.Push(endTags);
        try
        {
            return SubparseUntil(endTags);
        }
        finally
        {
            _endTagStack.Pop();
        }
    }

    private List<Stmt> SubparseUntil(string[]? endTags)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.End:
                    if (endTags is not null) throw FailUnknownTagOrEof(null);
                    return body;
                case TokenKind.Data:
                    body.Add(new TextStmt(token.Text, token.Line, token.Column));
                    Next();
                    break;
                case TokenKind.VariableBegin:
                    Next();
                    var value = ParseTuple(false, true, null, false);
                    body.Add(new OutputStmt(value, token.Line, token.Column));
                    Expect(TokenKind.VariableEnd);
                    break;
                case TokenKind.BlockBegin:
                    Next();
                    if (endTags is not null && Current.Kind == TokenKind.Name && Array.IndexOf(endTags, Current.Text) >= 0) return body;
                    body.Add(ParseStatement());
                    Expect(TokenKind.BlockEnd);
                    break;
                default:
                    throw Fail($"unexpected {token.Describe()}");
            }
        }
    }

    // jinja2's wording: what was found, which end tags the innermost open block wants, and that block.
    private ChatTemplateException FailUnknownTagOrEof(TemplateToken? tag)
    {
        var message = new System.Text.StringBuilder(tag is { } t ? $"Encountered unknown tag '{t.Text}'." : "Unexpected end of template.");
        if (_endTagStack.Count > 0)
        {
            string looking = string.Join(" or ", _endTagStack.Peek().Select(e => $"'{e}'"));
            bool nesting = tag is { } found && _endTagStack.Any(tags => tags.Contains(found.Text, StringComparer.Ordinal));
            message.Append(nesting
                ? $" You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for {looking}."
                : $" Jinja was looking for the following tags: {looking}.");
        }

        // The tag being parsed is on the stack too; the innermost *open* block is below it.
        var open = _openBlocks.Skip(tag is null ? 0 : 1).FirstOrDefault();
        if (open is not null) message.Append($" The innermost block that needs to be closed is '{open}'.");
        return tag is { } at ? Fail(message.ToString(), at) : Fail(message.ToString());
    }

    private List<Stmt> ParseStatements(string[] endTags, bool dropNeedle)
    {
        SkipOperator(":");
        Expect(TokenKind.BlockEnd);
        var body = Subparse(endTags);
        if (dropNeedle) Next();
        return body;
    }

    private Stmt ParseStatement()
    {
        EnsureStack();
        var token = Current;
        if (token.Kind != TokenKind.Name) throw Fail("tag name expected");
        _openBlocks.Push(token.Text);
        try
        {
            switch (token.Text)
            {
                case "if": return ParseIf();
                case "for": return ParseFor();
                case "set": return ParseSet();
                case "macro": return ParseMacro();
                case "call": return ParseCallBlock();
                case "filter": return ParseFilterBlock();
                case "with": return ParseWith();
                case "generation": return ParseGeneration();
                case "print":
                    Next();
                    return new OutputStmt(ParseTuple(false, true, null, false), token.Line, token.Column);
                case "break" or "continue":
                    if (_loopDepth == 0) throw Fail($"'{token.Text}' outside of a loop", token);
                    Next();
                    return token.Text == "break" ? new BreakStmt(token.Line, token.Column) : new ContinueStmt(token.Line, token.Column);
                case "extends" or "include" or "import" or "from" or "block" or "autoescape" or "do":
                    throw Fail($"the '{token.Text}' tag is not supported in chat templates", token);
                default:
                    throw FailUnknownTagOrEof(token);
            }
        }
        finally
        {
            _openBlocks.Pop();
        }
    }

    private IfStmt ParseIf()
    {
        var start = Next();
        var test = ParseTuple(false, false, null, false);
        var then = ParseStatements(["elif", "else", "endif"], false);
        var tag = Next();
        List<Stmt> otherwise;
        if (tag.Text == "elif")
        {
            _pos--;
            otherwise = [ParseIf()];
        }
        else if (tag.Text == "else")
        {
            otherwise = ParseStatements(["endif"], true);
        }
        else
        {
            otherwise = [];
        }

        return new IfStmt(test, then, otherwise, start.Line, start.Column);
    }

    private ForStmt ParseFor()
    {
        var start = Next();
        var target = ParseAssignTarget(["in"], false);
        Expect(TokenKind.Name, "in");
        var iterable = ParseTuple(false, false, ["recursive"], false);
        Expr? filter = null;
        if (SkipName("if")) filter = ParseExpression(true);
        bool recursive = SkipName("recursive");
        _loopDepth++;
        var body = ParseStatements(["endfor", "else"], false);
        _loopDepth--;
        var otherwise = Next().Text == "endfor" ? [] : ParseStatements(["endfor"], true);
        return new ForStmt(target, iterable, filter, recursive, body, otherwise, start.Line, start.Column);
    }

    private Stmt ParseSet()
    {
        var start = Next();
        var target = ParseAssignTarget(null, true);
        if (SkipOperator("="))
        {
            return new SetStmt(target, ParseTuple(false, true, null, false), start.Line, start.Column);
        }

        var filters = ParseFilterChain(false);
        var body = ParseStatements(["endset"], true);
        return new SetBlockStmt(target, filters, body, start.Line, start.Column);
    }

    private MacroStmt ParseMacro()
    {
        var start = Next();
        string name = Expect(TokenKind.Name).Text;
        return new MacroStmt(ParseMacroDefinition(name, true, ["endmacro"]), start.Line, start.Column);
    }

    private MacroDefinition ParseMacroDefinition(string name, bool signatureRequired, string[] endTags)
    {
        var parameters = new List<string>();
        var defaults = new List<Expr?>();
        if (signatureRequired || Current.IsOperator("("))
        {
            Expect(TokenKind.Operator, "(");
            while (!Current.IsOperator(")"))
            {
                if (parameters.Count > 0) Expect(TokenKind.Operator, ",");
                parameters.Add(Expect(TokenKind.Name).Text);
                if (SkipOperator("=")) defaults.Add(ParseExpression(true));
                else if (defaults.Exists(d => d is not null)) throw Fail("non-default argument follows default argument");
                else defaults.Add(null);
            }

            Expect(TokenKind.Operator, ")");
        }

        return ParseMacroBody(name, parameters, defaults, endTags);
    }

    private MacroDefinition ParseMacroBody(string name, List<string> parameters, List<Expr?> defaults, string[] endTags)
    {
        _macroNames.Push(new HashSet<string>(StringComparer.Ordinal));
        int loopDepth = _loopDepth;
        _loopDepth = 0;
        var body = ParseStatements(endTags, true);
        _loopDepth = loopDepth;
        var names = _macroNames.Pop();
        if (_macroNames.Count > 0) _macroNames.Peek().UnionWith(names);
        return new MacroDefinition(name, parameters, defaults, body, names.Contains("varargs"), names.Contains("kwargs"), names.Contains("caller"));
    }

    private CallBlockStmt ParseCallBlock()
    {
        var start = Next();
        var parameters = new List<string>();
        var defaults = new List<Expr?>();
        if (Current.IsOperator("("))
        {
            Next();
            while (!Current.IsOperator(")"))
            {
                if (parameters.Count > 0) Expect(TokenKind.Operator, ",");
                parameters.Add(Expect(TokenKind.Name).Text);
                defaults.Add(SkipOperator("=") ? ParseExpression(true) : null);
            }

            Expect(TokenKind.Operator, ")");
        }

        var call = ParseExpression(true) as CallExpr ?? throw Fail("expected call", start);
        var caller = ParseMacroBody("caller", parameters, defaults, ["endcall"]);
        return new CallBlockStmt(call, caller, start.Line, start.Column);
    }

    private FilterBlockStmt ParseFilterBlock()
    {
        var start = Next();
        var filters = ParseFilterChain(true);
        var body = ParseStatements(["endfilter"], true);
        return new FilterBlockStmt(filters, body, start.Line, start.Column);
    }

    private ScopeStmt ParseWith()
    {
        var start = Next();
        var assignments = new List<KeyValuePair<AssignTarget, Expr>>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (assignments.Count > 0) Expect(TokenKind.Operator, ",");
            var target = ParseAssignTarget(null, false);
            Expect(TokenKind.Operator, "=");
            assignments.Add(new KeyValuePair<AssignTarget, Expr>(target, ParseExpression(true)));
        }

        var body = ParseStatements(["endwith"], true);
        return new ScopeStmt(assignments, body, start.Line, start.Column);
    }

    // transformers' AssistantTracker: {% generation %} marks assistant text for masks; for
    // rendering, it is its body.
    private ScopeStmt ParseGeneration()
    {
        var start = Next();
        var body = ParseStatements(["endgeneration"], true);
        return new ScopeStmt([], body, start.Line, start.Column);
    }

    private AssignTarget ParseAssignTarget(string[]? extraEndRules, bool withNamespace)
    {
        if (withNamespace && Current.Kind == TokenKind.Name && Peek.IsOperator("."))
        {
            string name = Next().Text;
            Next();
            return new AssignTarget(name, Expect(TokenKind.Name).Text, null);
        }

        var targets = new List<AssignTarget>();
        bool isTuple = false;
        while (true)
        {
            if (targets.Count > 0) Expect(TokenKind.Operator, ",");
            if (IsTupleEnd(extraEndRules)) break;
            if (Current.IsOperator("("))
            {
                Next();
                var inner = ParseAssignTarget(null, false);
                Expect(TokenKind.Operator, ")");
                targets.Add(inner);
            }
            else
            {
                var token = Expect(TokenKind.Name);
                if (token.Text is "true" or "false" or "none" or "True" or "False" or "None") throw Fail($"can't assign to constant '{token.Text}'", token);
                targets.Add(new AssignTarget(token.Text, null, null));
            }

            if (Current.IsOperator(",")) isTuple = true;
            else break;
        }

        if (targets.Count == 0) throw Fail($"expected an assignment target, got {Current.Describe()}");
        return isTuple ? new AssignTarget(null, null, targets) : targets[0];
    }

    private bool IsTupleEnd(string[]? extraEndRules)
    {
        var token = Current;
        if (token.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd or TokenKind.End || token.IsOperator(")")) return true;
        return extraEndRules is not null && token.Kind == TokenKind.Name && Array.IndexOf(extraEndRules, token.Text) >= 0;
    }

    private Expr ParseTuple(bool simplified, bool withConditional, string[]? extraEndRules, bool explicitParentheses)
    {
        var start = Current;
        var items = new List<Expr>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) Expect(TokenKind.Operator, ",");
            if (IsTupleEnd(extraEndRules)) break;
            items.Add(simplified ? ParsePrimary() : ParseExpression(withConditional));
            if (Current.IsOperator(",")) isTuple = true;
            else break;
        }

        if (!isTuple)
        {
            if (items.Count > 0) return items[0];
            if (!explicitParentheses) throw Fail($"Expected an expression, got {Current.Describe()}");
        }

        return new ListExpr(items, true, start.Line, start.Column);
    }

    private Expr ParseExpression(bool withConditional)
    {
        EnsureStack();
        return withConditional ? ParseConditional() : ParseOr();
    }

    private void EnsureStack()
    {
        if (!System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack()) throw Fail("the template nests too deeply to parse");
    }

    private Expr ParseConditional()
    {
        var start = Current;
        var expr = ParseOr();
        while (SkipName("if"))
        {
            var test = ParseOr();
            Expr? otherwise = SkipName("else") ? ParseConditional() : null;
            expr = new ConditionalExpr(test, expr, otherwise, start.Line, start.Column);
        }

        return expr;
    }

    private Expr ParseOr()
    {
        var start = Current;
        var left = ParseAnd();
        while (SkipName("or")) left = new BinaryExpr("or", left, ParseAnd(), start.Line, start.Column);
        return left;
    }

    private Expr ParseAnd()
    {
        var start = Current;
        var left = ParseNot();
        while (SkipName("and")) left = new BinaryExpr("and", left, ParseNot(), start.Line, start.Column);
        return left;
    }

    private Expr ParseNot()
    {
        var start = Current;
        if (SkipName("not")) return new NotExpr(ParseNot(), start.Line, start.Column);
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var start = Current;
        var first = ParseMath1();
        var rest = new List<KeyValuePair<string, Expr>>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && CompareOperators.Contains(Current.Text))
            {
                string op = Next().Text;
                rest.Add(new KeyValuePair<string, Expr>(op, ParseMath1()));
            }
            else if (SkipName("in"))
            {
                rest.Add(new KeyValuePair<string, Expr>("in", ParseMath1()));
            }
            else if (Current.IsName("not") && Peek.IsName("in"))
            {
                _pos += 2;
                rest.Add(new KeyValuePair<string, Expr>("notin", ParseMath1()));
            }
            else
            {
                break;
            }
        }

        return rest.Count == 0 ? first : new CompareExpr(first, rest, start.Line, start.Column);
    }

    private Expr ParseMath1()
    {
        var start = Current;
        var left = ParseConcat();
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            string op = Next().Text;
            left = new BinaryExpr(op, left, ParseConcat(), start.Line, start.Column);
        }

        return left;
    }

    private Expr ParseConcat()
    {
        var start = Current;
        var parts = new List<Expr> { ParseMath2() };
        while (SkipOperator("~")) parts.Add(ParseMath2());
        return parts.Count == 1 ? parts[0] : new ConcatExpr(parts, start.Line, start.Column);
    }

    private Expr ParseMath2()
    {
        var start = Current;
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Text is "*" or "/" or "//" or "%")
        {
            string op = Next().Text;
            left = new BinaryExpr(op, left, ParsePow(), start.Line, start.Column);
        }

        return left;
    }

    private Expr ParsePow()
    {
        var start = Current;
        var left = ParseUnary(true);
        while (SkipOperator("**")) left = new BinaryExpr("**", left, ParseUnary(true), start.Line, start.Column);
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        EnsureStack();
        var start = Current;
        Expr node;
        if (SkipOperator("-")) node = new NegateExpr(ParseUnary(false), false, start.Line, start.Column);
        else if (SkipOperator("+")) node = new NegateExpr(ParseUnary(false), true, start.Line, start.Column);
        else node = ParsePrimary();
        node = ParsePostfix(node);
        return withFilter ? ParseFilterExpr(node) : node;
    }

    private Expr ParsePrimary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Name:
                Next();
                switch (token.Text)
                {
                    case "true" or "True": return new ConstExpr(true, token.Line, token.Column);
                    case "false" or "False": return new ConstExpr(false, token.Line, token.Column);
                    case "none" or "None": return new ConstExpr(null, token.Line, token.Column);
                    default:
                        foreach (var names in _macroNames) names.Add(token.Text);
                        return new NameExpr(token.Text, token.Line, token.Column);
                }

            case TokenKind.String:
                Next();
                string text = (string)token.Value!;
                while (Current.Kind == TokenKind.String) text += (string)Next().Value!;
                return new ConstExpr(text, token.Line, token.Column);
            case TokenKind.Integer or TokenKind.Float:
                Next();
                return new ConstExpr(token.Value, token.Line, token.Column);
            case TokenKind.Operator when token.Text == "(":
                Next();
                var inner = ParseTuple(false, true, null, true);
                Expect(TokenKind.Operator, ")");
                return inner;
            case TokenKind.Operator when token.Text == "[":
                return ParseList();
            case TokenKind.Operator when token.Text == "{":
                return ParseDict();
            default:
                throw Fail(token.Kind == TokenKind.End ? "unexpected end of template" : $"unexpected {token.Describe()}");
        }
    }

    private ListExpr ParseList()
    {
        var start = Expect(TokenKind.Operator, "[");
        var items = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (items.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOperator("]")) break;
            items.Add(ParseExpression(true));
        }

        Expect(TokenKind.Operator, "]");
        return new ListExpr(items, false, start.Line, start.Column);
    }

    private DictExpr ParseDict()
    {
        var start = Expect(TokenKind.Operator, "{");
        var pairs = new List<KeyValuePair<Expr, Expr>>();
        while (!Current.IsOperator("}"))
        {
            if (pairs.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOperator("}")) break;
            var key = ParseExpression(true);
            Expect(TokenKind.Operator, ":");
            pairs.Add(new KeyValuePair<Expr, Expr>(key, ParseExpression(true)));
        }

        Expect(TokenKind.Operator, "}");
        return new DictExpr(pairs, start.Line, start.Column);
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator(".") || Current.IsOperator("[")) node = ParseSubscript(node);
            else if (Current.IsOperator("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator("|")) node = ParseFilters(node);
            else if (Current.IsName("is")) node = ParseTest(node);
            else if (Current.IsOperator("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseSubscript(Expr node)
    {
        var token = Next();
        if (token.Text == ".")
        {
            var attribute = Next();
            if (attribute.Kind == TokenKind.Name) return new GetAttrExpr(node, attribute.Text, token.Line, token.Column);
            if (attribute.Kind != TokenKind.Integer) throw Fail("expected name or number", attribute);
            return new GetItemExpr(node, new ConstExpr(attribute.Value, attribute.Line, attribute.Column), token.Line, token.Column);
        }

        var args = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (args.Count > 0) Expect(TokenKind.Operator, ",");
            args.Add(ParseSubscribed());
        }

        Expect(TokenKind.Operator, "]");
        var index = args.Count == 1 ? args[0] : new ListExpr(args, true, token.Line, token.Column);
        return new GetItemExpr(node, index, token.Line, token.Column);
    }

    private Expr ParseSubscribed()
    {
        var start = Current;
        Expr? first = null;
        if (!SkipOperator(":"))
        {
            first = ParseExpression(true);
            if (!SkipOperator(":")) return first;
        }

        Expr? stop = null, step = null;
        if (!Current.IsOperator(":") && !Current.IsOperator("]") && !Current.IsOperator(",")) stop = ParseExpression(true);
        if (SkipOperator(":") && !Current.IsOperator("]") && !Current.IsOperator(",")) step = ParseExpression(true);
        return new SliceExpr(first, stop, step, start.Line, start.Column);
    }

    private CallExpr ParseCall(Expr node)
    {
        var token = Current;
        return new CallExpr(node, ParseCallArguments(), token.Line, token.Column);
    }

    private Arguments ParseCallArguments()
    {
        Expect(TokenKind.Operator, "(");
        var positional = new List<Expr>();
        var keywords = new List<KeyValuePair<string, Expr>>();
        Expr? star = null, doubleStar = null;
        bool requireComma = false;
        while (!Current.IsOperator(")"))
        {
            if (requireComma)
            {
                Expect(TokenKind.Operator, ",");
                if (Current.IsOperator(")")) break;
            }

            if (SkipOperator("*"))
            {
                star = ParseExpression(true);
            }
            else if (SkipOperator("**"))
            {
                doubleStar = ParseExpression(true);
            }
            else if (Current.Kind == TokenKind.Name && Peek.IsOperator("="))
            {
                string key = Next().Text;
                Next();
                keywords.Add(new KeyValuePair<string, Expr>(key, ParseExpression(true)));
            }
            else
            {
                if (keywords.Count > 0 || star is not null || doubleStar is not null) throw Fail("invalid syntax for function call expression");
                positional.Add(ParseExpression(true));
            }

            requireComma = true;
        }

        Expect(TokenKind.Operator, ")");
        return new Arguments(positional, keywords, star, doubleStar);
    }

    private List<FilterExpr> ParseFilterChain(bool startInline)
    {
        var filters = new List<FilterExpr>();
        while (startInline || Current.IsOperator("|"))
        {
            if (!startInline) Next();
            startInline = false;
            filters.Add(ParseOneFilter(null));
        }

        return filters;
    }

    private Expr ParseFilters(Expr node)
    {
        while (SkipOperator("|")) node = ParseOneFilter(node);
        return node;
    }

    private FilterExpr ParseOneFilter(Expr? target)
    {
        var token = Expect(TokenKind.Name);
        string name = token.Text;
        while (SkipOperator(".")) name += "." + Expect(TokenKind.Name).Text;
        if (!TemplateFilters.JinjaNames.Contains(name)) throw Fail($"No filter named '{name}'.", token);
        var args = Current.IsOperator("(") ? ParseCallArguments() : Arguments.None;
        return new FilterExpr(target, name, args, token.Line, token.Column);
    }

    private Expr ParseTest(Expr node)
    {
        var token = Next();
        bool negated = SkipName("not");
        var nameToken = Expect(TokenKind.Name);
        string name = nameToken.Text;
        while (SkipOperator(".")) name += "." + Expect(TokenKind.Name).Text;
        if (!TemplateTests.Names.Contains(name)) throw Fail($"No test named '{name}'.", nameToken);
        Arguments args;
        if (Current.IsOperator("("))
        {
            args = ParseCallArguments();
        }
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || Current.IsOperator("[") || Current.IsOperator("{"))
            && !Current.IsName("else") && !Current.IsName("or") && !Current.IsName("and"))
        {
            if (Current.IsName("is")) throw Fail("You cannot chain multiple tests with is");
            var argument = ParsePostfix(ParsePrimary());
            args = new Arguments([argument], [], null, null);
        }
        else
        {
            args = Arguments.None;
        }

        Expr test = new TestExpr(node, name, args, token.Line, token.Column);
        return negated ? new NotExpr(test, token.Line, token.Column) : test;
    }
}
