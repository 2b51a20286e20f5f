namespace Pipeline.Inference.Chat;

/// <summary>
/// <c>x.name</c>, <c>x[key]</c> and <c>x[a:b:c]</c> as jinja2's sandbox does them: attribute access tries
/// the Python attribute (a method such as <c>dict.items</c>) before the item, subscripting tries the item
/// before the attribute, and a miss gives Undefined rather than an error.
/// </summary>
internal static class ValueAccess
{
    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined undefined:
                throw undefined.Error();
            case NamespaceValue ns:
                return ns.Attributes.TryGetValue(name, out var attribute) ? attribute : Undefined.Missing(target, name);
            case LoopValue loop:
                return loop.GetAttribute(name);
        }

        if (target is not null && ValueMethods.Lookup(target, name) is { } method) return method;
        if (target is DictValue dict && dict.TryGet(name, out var value)) return value;
        return Undefined.Missing(target, name);
    }

    public static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case Undefined undefined:
                throw undefined.Error();
            case DictValue dict when PyKeyComparer.IsHashable(key) && dict.TryGet(key, out var value):
                return value;
            case ListValue list when key is long or bool:
            {
                long index = PyOps.ToLong(key);
                if (index < 0) index += list.Count;
                if (index >= 0 && index < list.Count) return list.Items[(int)index];
                break;
            }

            case string or SafeString when key is long or bool:
            {
                string text = PyOps.AsString(target)!;
                long index = PyOps.ToLong(key);
                int length = PyOps.CodePointCount(text);
                if (index < 0) index += length;
                if (index >= 0 && index < length) return CodePointAt(text, length, (int)index);
                break;
            }
        }

        if (key is string name && target is not null)
        {
            if (target is NamespaceValue or LoopValue) return GetAttribute(target, name);
            if (ValueMethods.Lookup(target, name) is { } method) return method;
        }

        return Undefined.Missing(target, key);
    }

    private static string CodePointAt(string text, int length, int index)
    {
        if (length == text.Length) return text[index].ToString();
        int i = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (i++ == index) return rune.ToString();
        }

        return string.Empty;
    }

    /// <summary>Python's <c>target[start:stop:step]</c> on lists, tuples and strings (strings by code point).</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        PyOps.ThrowIfUndefined(target);
        long stride = step is null ? 1 : PyOps.ToLong(step);
        if (stride == 0) throw new ChatTemplateException("slice step cannot be zero");
        List<object?> items;
        switch (target)
        {
            case ListValue list:
                items = list.Items;
                break;
            case string or SafeString:
                items = [.. PyOps.CodePoints(PyOps.AsString(target)!)];
                break;
            default:
                throw new ChatTemplateException($"'{PyOps.TypeName(target)}' object is not subscriptable");
        }

        int length = items.Count;
        var picked = new List<object?>();
        if (stride > 0)
        {
            long from = Clamp(start, 0, length, 0, length);
            long to = Clamp(stop, length, length, 0, length);
            for (long i = from; i < to; i += stride) picked.Add(items[(int)i]);
        }
        else
        {
            long from = Clamp(start, length - 1, length, -1, length - 1);
            long to = Clamp(stop, -1, length, -1, length - 1);
            for (long i = from; i > to; i += stride) picked.Add(items[(int)i]);
        }

        return target switch
        {
            ListValue list => new ListValue(picked, list.IsTuple),
            SafeString => new SafeString(string.Concat(picked.Cast<string>())),
            _ => string.Concat(picked.Cast<string>()),
        };
    }

    // Python's slice index normalisation: absent -> fallback, negative counts from the end, then clamp.
    private static long Clamp(object? index, long fallback, int length, long low, long high)
    {
        if (index is null) return fallback;
        long value = PyOps.ToLong(index);
        if (value < 0) value += length;
        return Math.Clamp(value, low, high);
    }
}
