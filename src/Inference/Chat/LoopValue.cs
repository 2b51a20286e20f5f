namespace Pipeline.Inference.Chat;

/// <summary>The <c>loop</c> variable of a <c>for</c>: position, neighbours, <c>cycle</c>, <c>changed</c>, and the recursive call.</summary>
internal sealed class LoopValue
{
    private readonly List<object?> _items;
    private readonly Func<object?, int, string>? _recurse;
    private object? _lastChanged = Undefined.WithMessage("no previous value");

    public LoopValue(List<object?> items, int depth0, Func<object?, int, string>? recurse)
    {
        _items = items;
        Depth0 = depth0;
        _recurse = recurse;
    }

    /// <summary>The zero-based position of the current item; advanced by the renderer.</summary>
    public int Index0 { get; set; }

    public int Index => Index0 + 1;

    public int Length => _items.Count;

    public int Depth0 { get; }

    public bool IsRecursive => _recurse is not null;

    public object? GetAttribute(string name) => name switch
    {
        "index" => (long)Index,
        "index0" => (long)Index0,
        "revindex" => (long)(Length - Index0),
        "revindex0" => (long)(Length - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == Length - 1,
        "length" => (long)Length,
        "depth" => (long)(Depth0 + 1),
        "depth0" => (long)Depth0,
        "previtem" => Index0 > 0 ? _items[Index0 - 1] : Undefined.WithMessage("there is no previous item"),
        "nextitem" => Index0 + 1 < Length ? _items[Index0 + 1] : Undefined.WithMessage("there is no next item"),
        "cycle" => new FunctionValue("cycle", Cycle),
        "changed" => new FunctionValue("changed", args => Changed(args)),
        _ => Undefined.Missing(this, name),
    };

    private object? Cycle(CallArguments args)
    {
        if (args.Positional.Count == 0) throw new ChatTemplateException("no items for cycling given");
        return args.Positional[Index0 % args.Positional.Count];
    }

    private bool Changed(CallArguments args)
    {
        var value = new ListValue([.. args.Positional], true);
        if (PyOps.Equal(value, _lastChanged)) return false;
        _lastChanged = value;
        return true;
    }

    /// <summary><c>loop(children)</c> in a <c>recursive</c> loop: renders the loop body over the children one level deeper.</summary>
    public string Recurse(object? iterable) =>
        _recurse is null ? throw new ChatTemplateException("loop is not recursive; add 'recursive' to the for tag") : _recurse(iterable, Depth0 + 1);
}
