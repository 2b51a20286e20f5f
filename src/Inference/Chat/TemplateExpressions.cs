namespace Pipeline.Inference.Chat;

// The expression tree the parser builds. Every node is immutable and records where it started, so a
// render error can name its line and column.

internal abstract record Expr(int Line, int Column);

internal sealed record ConstExpr(object? Value, int Line, int Column) : Expr(Line, Column);

internal sealed record NameExpr(string Name, int Line, int Column) : Expr(Line, Column);

internal sealed record ListExpr(IReadOnlyList<Expr> Items, bool IsTuple, int Line, int Column) : Expr(Line, Column);

internal sealed record DictExpr(IReadOnlyList<KeyValuePair<Expr, Expr>> Pairs, int Line, int Column) : Expr(Line, Column);

internal sealed record GetAttrExpr(Expr Target, string Attribute, int Line, int Column) : Expr(Line, Column);

internal sealed record GetItemExpr(Expr Target, Expr Index, int Line, int Column) : Expr(Line, Column);

/// <summary><c>start:stop:step</c> inside a subscript; absent parts are null.</summary>
internal sealed record SliceExpr(Expr? Start, Expr? Stop, Expr? Step, int Line, int Column) : Expr(Line, Column);

internal sealed record CallExpr(Expr Callee, Arguments Args, int Line, int Column) : Expr(Line, Column);

/// <summary><c>value | name(args)</c>; <see cref="Target"/> is null for the filters of a <c>{% filter %}</c> block.</summary>
internal sealed record FilterExpr(Expr? Target, string Name, Arguments Args, int Line, int Column) : Expr(Line, Column);

internal sealed record TestExpr(Expr Target, string Name, Arguments Args, int Line, int Column) : Expr(Line, Column);

internal sealed record NotExpr(Expr Operand, int Line, int Column) : Expr(Line, Column);

internal sealed record NegateExpr(Expr Operand, bool IsPlus, int Line, int Column) : Expr(Line, Column);

/// <summary>Arithmetic (<c>+ - * / // % **</c>) and the short-circuiting <c>and</c>/<c>or</c>.</summary>
internal sealed record BinaryExpr(string Operator, Expr Left, Expr Right, int Line, int Column) : Expr(Line, Column);

/// <summary><c>a ~ b ~ c</c>: string concatenation of each operand's <c>str()</c>.</summary>
internal sealed record ConcatExpr(IReadOnlyList<Expr> Parts, int Line, int Column) : Expr(Line, Column);

/// <summary>A comparison chain <c>a &lt; b == c</c>; operators are <c>== != &lt; &lt;= &gt; &gt;= in notin</c>.</summary>
internal sealed record CompareExpr(Expr First, IReadOnlyList<KeyValuePair<string, Expr>> Rest, int Line, int Column) : Expr(Line, Column);

/// <summary><c>then if test else otherwise</c>; a missing else gives Undefined.</summary>
internal sealed record ConditionalExpr(Expr Test, Expr Then, Expr? Otherwise, int Line, int Column) : Expr(Line, Column);

/// <summary>The arguments of a call, filter or test, unevaluated; <c>*args</c>/<c>**kwargs</c> are kept apart.</summary>
internal sealed record Arguments(IReadOnlyList<Expr> Positional, IReadOnlyList<KeyValuePair<string, Expr>> Keywords, Expr? Star, Expr? DoubleStar)
{
    public static readonly Arguments None = new([], [], null, null);
}
