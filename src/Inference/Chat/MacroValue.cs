namespace Pipeline.Inference.Chat;

/// <summary>A macro (or a call block's <c>caller</c>) bound to the scope it was defined in, as a Python closure is.</summary>
internal sealed class MacroValue
{
    public MacroValue(MacroDefinition definition, TemplateScope closure)
    {
        Definition = definition;
        Closure = closure;
    }

    public MacroDefinition Definition { get; }

    /// <summary>The scope the macro was defined in: its body sees those variables' latest values.</summary>
    public TemplateScope Closure { get; }

    public string Name => Definition.Name;
}
