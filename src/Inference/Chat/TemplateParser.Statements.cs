namespace Pipeline.Inference.Chat;

// The tags: text and output, if/for/set/macro/call/filter/with/generation, loop controls, and
// jinja2's messages for unknown and unclosed tags.
internal sealed partial class TemplateParser
{
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
}
