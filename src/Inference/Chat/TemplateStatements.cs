namespace Pipeline.Inference.Chat;

// The statement tree: template text, output, and the block tags. Immutable once parsed.

internal abstract record Stmt(int Line, int Column);

internal sealed record TextStmt(string Text, int Line, int Column) : Stmt(Line, Column);

internal sealed record OutputStmt(Expr Value, int Line, int Column) : Stmt(Line, Column);

internal sealed record IfStmt(Expr Test, IReadOnlyList<Stmt> Then, IReadOnlyList<Stmt> Otherwise, int Line, int Column) : Stmt(Line, Column);

/// <summary><c>{% for target in iterable if filter recursive %} body {% else %} otherwise {% endfor %}</c>.</summary>
internal sealed record ForStmt(AssignTarget Target, Expr Iterable, Expr? Filter, bool Recursive, IReadOnlyList<Stmt> Body, IReadOnlyList<Stmt> Otherwise, int Line, int Column)
    : Stmt(Line, Column);

internal sealed record SetStmt(AssignTarget Target, Expr Value, int Line, int Column) : Stmt(Line, Column);

/// <summary><c>{% set name | filters %} body {% endset %}</c>: the rendered body, through the filters, is assigned.</summary>
internal sealed record SetBlockStmt(AssignTarget Target, IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Stmt> Body, int Line, int Column) : Stmt(Line, Column);

internal sealed record MacroStmt(MacroDefinition Definition, int Line, int Column) : Stmt(Line, Column);

/// <summary><c>{% call(params) macro(args) %} body {% endcall %}</c>: the body becomes the callee's <c>caller()</c>.</summary>
internal sealed record CallBlockStmt(CallExpr Call, MacroDefinition Caller, int Line, int Column) : Stmt(Line, Column);

internal sealed record FilterBlockStmt(IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Stmt> Body, int Line, int Column) : Stmt(Line, Column);

/// <summary><c>{% with a = x %}</c> and transformers' <c>{% generation %}</c>: a body in its own scope.</summary>
internal sealed record ScopeStmt(IReadOnlyList<KeyValuePair<AssignTarget, Expr>> Assignments, IReadOnlyList<Stmt> Body, int Line, int Column) : Stmt(Line, Column);

internal sealed record BreakStmt(int Line, int Column) : Stmt(Line, Column);

internal sealed record ContinueStmt(int Line, int Column) : Stmt(Line, Column);

/// <summary>What <c>set</c>, <c>for</c> and <c>with</c> assign to: a name, <c>ns.attr</c>, or a tuple of targets.</summary>
internal sealed record AssignTarget(string? Name, string? NamespaceAttribute, IReadOnlyList<AssignTarget>? Tuple);

/// <summary>A macro (or a call block's body): parameters with default expressions, and the body.</summary>
internal sealed record MacroDefinition(
    string Name,
    IReadOnlyList<string> Parameters,
    IReadOnlyList<Expr?> Defaults,
    IReadOnlyList<Stmt> Body,
    bool TakesVarargs,
    bool TakesKwargs,
    bool TakesCaller);
