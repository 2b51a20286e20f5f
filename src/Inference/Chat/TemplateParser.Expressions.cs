namespace Pipeline.Inference.Chat;

// Expressions, lowest precedence first: conditional, or, and, not, comparisons, + -, ~, * / // %, **,
// unary, primary, then postfix subscripts/calls and filters/tests.
internal sealed partial class TemplateParser
{
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
