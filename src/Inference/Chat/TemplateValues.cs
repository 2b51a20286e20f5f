namespace Pipeline.Inference.Chat;

// The runtime values of a render, modelled on the Python objects jinja2 would hold. Scalars are plain
// CLR values: null is None, bool, long (int), double (float), string (str). The containers below are
// created per render; the parsed template never holds one, so sharing a parsed template is safe.

/// <summary>A Python list or tuple. Templates cannot mutate it (the sandbox forbids list.append).</summary>
internal sealed class ListValue
{
    public ListValue(List<object?> items, bool isTuple = false)
    {
        Items = items;
        IsTuple = isTuple;
    }

    public List<object?> Items { get; }

    /// <summary>True for a tuple: it prints as <c>(a, b)</c> rather than <c>[a, b]</c>.</summary>
    public bool IsTuple { get; }

    public int Count => Items.Count;
}

/// <summary>A Python dict: insertion ordered, keys hashed with Python's equality (1 == 1.0 == True).</summary>
internal sealed class DictValue
{
    private readonly List<KeyValuePair<object?, object?>> _entries = [];
    private readonly Dictionary<object, int> _index = new(PyKeyComparer.Instance);

    public int Count => _entries.Count;

    public IReadOnlyList<KeyValuePair<object?, object?>> Entries => _entries;

    public void Set(object? key, object? value)
    {
        object hashKey = PyKeyComparer.HashKey(key);
        if (_index.TryGetValue(hashKey, out int at))
        {
            _entries[at] = new KeyValuePair<object?, object?>(_entries[at].Key, value);
        }
        else
        {
            _index[hashKey] = _entries.Count;
            _entries.Add(new KeyValuePair<object?, object?>(key, value));
        }
    }

    public bool TryGet(object? key, out object? value)
    {
        if (PyKeyComparer.IsHashable(key) && _index.TryGetValue(PyKeyComparer.HashKey(key), out int at))
        {
            value = _entries[at].Value;
            return true;
        }

        value = null;
        return false;
    }

    public bool ContainsKey(object? key) => TryGet(key, out _);
}

/// <summary>The object <c>namespace(...)</c> returns: the one value a template may assign attributes on.</summary>
internal sealed class NamespaceValue
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>markupsafe's <c>Markup</c> (from <c>|safe</c>, <c>|escape</c>): adding a plain string to it escapes that string.</summary>
internal sealed class SafeString
{
    public SafeString(string value) => Value = value;

    public string Value { get; }

    public override string ToString() => Value;
}

/// <summary>
/// A Python generator (from <c>select</c>, <c>map</c>, ...): always truthy, has no length, and can be
/// iterated once.
/// </summary>
internal sealed class GeneratorValue
{
    private IEnumerator<object?>? _source;

    public GeneratorValue(IEnumerable<object?> source) => _source = source.GetEnumerator();

    public IEnumerable<object?> Drain()
    {
        var source = _source;
        _source = null;
        if (source is null) yield break;
        using (source)
        {
            while (source.MoveNext()) yield return source.Current;
        }
    }
}

/// <summary>A built-in callable (range, namespace, raise_exception, caller, loop.cycle, ...).</summary>
internal sealed class FunctionValue
{
    public FunctionValue(string name, Func<CallArguments, object?> invoke)
    {
        Name = name;
        Invoke = invoke;
    }

    public string Name { get; }

    public Func<CallArguments, object?> Invoke { get; }
}

/// <summary>A method looked up on a value (<c>text.strip</c>, <c>message.get</c>) and not yet called.</summary>
internal sealed class BoundMethod
{
    public BoundMethod(object receiver, string name, bool unsafeInSandbox)
    {
        Receiver = receiver;
        Name = name;
        UnsafeInSandbox = unsafeInSandbox;
    }

    public object Receiver { get; }

    public string Name { get; }

    /// <summary>True for mutating methods (list.append, dict.update) that the immutable sandbox refuses to call.</summary>
    public bool UnsafeInSandbox { get; }
}

/// <summary>The positional and keyword arguments of one call, already evaluated.</summary>
internal sealed class CallArguments
{
    public static readonly CallArguments Empty = new([], []);

    public CallArguments(IReadOnlyList<object?> positional, IReadOnlyList<KeyValuePair<string, object?>> keywords)
    {
        Positional = positional;
        Keywords = keywords;
    }

    public IReadOnlyList<object?> Positional { get; }

    public IReadOnlyList<KeyValuePair<string, object?>> Keywords { get; }

    /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>; <paramref name="fallback"/> when neither is given.</summary>
    public object? Get(int index, string name, object? fallback)
    {
        foreach (var pair in Keywords)
        {
            if (string.Equals(pair.Key, name, StringComparison.Ordinal)) return pair.Value;
        }

        return index >= 0 && index < Positional.Count ? Positional[index] : fallback;
    }

    public bool Has(int index, string name)
    {
        foreach (var pair in Keywords)
        {
            if (string.Equals(pair.Key, name, StringComparison.Ordinal)) return true;
        }

        return index >= 0 && index < Positional.Count;
    }
}
