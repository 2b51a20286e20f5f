namespace Pipeline.Inference.Chat;

/// <summary>
/// One level of variables. jinja2 gives each loop iteration, macro call, filter/call block and
/// <c>with</c> its own level; <c>if</c> does not. <c>set</c> writes the innermost level only, which is
/// why templates carry state out of loops through <c>namespace()</c>.
/// </summary>
internal sealed class TemplateScope
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);

    public TemplateScope(TemplateScope? parent) => Parent = parent;

    public TemplateScope? Parent { get; }

    public void Set(string name, object? value) => _variables[name] = value;

    public bool TryGet(string name, out object? value)
    {
        for (var scope = this; scope is not null; scope = scope.Parent)
        {
            if (scope._variables.TryGetValue(name, out value)) return true;
        }

        value = null;
        return false;
    }

    public object? Get(string name) => TryGet(name, out var value) ? value : Undefined.Named(name);
}
