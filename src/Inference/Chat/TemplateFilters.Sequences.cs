using System.Globalization;

namespace Pipeline.Inference.Chat;

// The filters over sequences: join, map, select/reject(attr), sort, dictsort, min/max, unique, batch,
// and jinja2's dotted attribute getter they share.
internal static partial class TemplateFilters
{
    private static string Join(object? value, CallArguments args)
    {
        string separator = PyOps.Str(args.Get(0, "d", string.Empty));
        var attribute = args.Get(1, "attribute", null);
        var items = PyOps.Iterate(value).Select(item => PyOps.Str(attribute is null ? item : GetPath(item, attribute, null)));
        return string.Join(separator, items);
    }

    /// <summary>jinja2's attribute getter: <c>"a.b"</c> walks items/attributes, integer parts index lists.</summary>
    public static object? GetPath(object? item, object? attribute, object? fallback)
    {
        IEnumerable<object?> parts = attribute is string path
            ? path.Split('.').Select(p => long.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? (object?)n : p)
            : [attribute];
        foreach (var part in parts)
        {
            item = ValueAccess.GetItem(item, part);
            if (item is Undefined && fallback is not null) return fallback;
        }

        return item;
    }

    private static GeneratorValue Map(TemplateRenderer renderer, object? value, CallArguments args)
    {
        if (!PyOps.IsTruthy(value)) return new GeneratorValue([]);
        var items = PyOps.Iterate(value);
        if (args.Positional.Count == 0 && args.Has(-1, "attribute"))
        {
            var attribute = args.Get(-1, "attribute", null);
            var fallback = args.Get(-1, "default", null);
            return new GeneratorValue(items.Select(item => GetPath(item, attribute, fallback)));
        }

        if (args.Positional.Count == 0) throw new ChatTemplateException("map requires a filter argument");
        string filter = PyOps.Str(args.Positional[0]);
        var rest = new CallArguments([.. args.Positional.Skip(1)], args.Keywords);
        return new GeneratorValue(items.Select(item => Apply(renderer, filter, item, rest)));
    }

    private static GeneratorValue Select(TemplateRenderer renderer, object? value, CallArguments args, bool keep, bool byAttribute)
    {
        if (!PyOps.IsTruthy(value)) return new GeneratorValue([]);
        int next = 0;
        object? attribute = null;
        if (byAttribute)
        {
            if (args.Positional.Count == 0) throw new ChatTemplateException("Missing parameter for attribute name");
            attribute = args.Positional[next++];
        }

        string? test = next < args.Positional.Count ? PyOps.Str(args.Positional[next++]) : null;
        var testArgs = new CallArguments([.. args.Positional.Skip(next)], args.Keywords);
        bool Matches(object? item)
        {
            var subject = byAttribute ? GetPath(item, attribute, null) : item;
            return test is null ? PyOps.IsTruthy(subject) : TemplateTests.Apply(renderer, test, subject, testArgs);
        }

        return new GeneratorValue(PyOps.Iterate(value).Where(item => Matches(item) == keep));
    }

    private static object? SortKey(object? item, object? attribute, bool caseSensitive)
    {
        var key = attribute is null ? item : GetPath(item, attribute, null);
        return !caseSensitive && PyOps.AsString(key) is { } s ? s.ToLowerInvariant() : key;
    }

    private static ListValue Sort(object? value, CallArguments args)
    {
        bool reverse = PyOps.IsTruthy(args.Get(0, "reverse", false));
        bool caseSensitive = PyOps.IsTruthy(args.Get(1, "case_sensitive", false));
        var attribute = args.Get(2, "attribute", null);
        var keyed = PyOps.ToList(value).Select(item => (Key: SortKey(item, attribute, caseSensitive), Item: item)).ToList();
        var sorted = reverse
            ? keyed.OrderByDescending(p => p.Key, PyComparer.Instance).ToList()
            : keyed.OrderBy(p => p.Key, PyComparer.Instance).ToList();
        return new ListValue(sorted.ConvertAll(p => p.Item));
    }

    private static ListValue DictSort(object? value, CallArguments args)
    {
        if (value is not DictValue dict) throw new ChatTemplateException("You can only sort by either \"key\" or \"value\"");
        bool caseSensitive = PyOps.IsTruthy(args.Get(0, "case_sensitive", false));
        string by = PyOps.Str(args.Get(1, "by", "key"));
        bool reverse = PyOps.IsTruthy(args.Get(2, "reverse", false));
        int position = by switch
        {
            "key" => 0,
            "value" => 1,
            _ => throw new ChatTemplateException("You can only sort by either \"key\" or \"value\""),
        };
        var pairs = dict.Entries.Select(e => new ListValue([e.Key, e.Value], true)).ToList();
        object? Key(ListValue pair) => SortKey(pair.Items[position], null, caseSensitive);
        var sorted = reverse ? pairs.OrderByDescending(Key, PyComparer.Instance) : pairs.OrderBy(Key, PyComparer.Instance);
        return new ListValue(sorted.Select(p => (object?)p).ToList());
    }

    private static object? MinMax(object? value, CallArguments args, bool max)
    {
        bool caseSensitive = PyOps.IsTruthy(args.Get(0, "case_sensitive", false));
        var attribute = args.Get(1, "attribute", null);
        var items = PyOps.ToList(value);
        if (items.Count == 0) return Undefined.WithMessage($"No aggregated item, sequence was empty.");
        var best = items[0];
        foreach (var item in items.Skip(1))
        {
            int order = PyComparer.Instance.Compare(SortKey(item, attribute, caseSensitive), SortKey(best, attribute, caseSensitive));
            if (max ? order > 0 : order < 0) best = item;
        }

        return best;
    }

    private static GeneratorValue Unique(object? value, CallArguments args)
    {
        bool caseSensitive = PyOps.IsTruthy(args.Get(0, "case_sensitive", false));
        var attribute = args.Get(1, "attribute", null);
        var seen = new List<object?>();
        var result = new List<object?>();
        foreach (var item in PyOps.Iterate(value))
        {
            var key = SortKey(item, attribute, caseSensitive);
            if (seen.Exists(s => PyOps.Equal(s, key))) continue;
            seen.Add(key);
            result.Add(item);
        }

        return new GeneratorValue(result);
    }

    private static GeneratorValue Batch(object? value, CallArguments args)
    {
        int size = (int)PyOps.ToLong(args.Get(0, "linecount", 1L));
        if (size <= 0) throw new ChatTemplateException("batch size must be positive");
        var fill = args.Has(1, "fill_with") ? args.Get(1, "fill_with", null) : Undefined.Named("fill_with");
        var batches = PyOps.ToList(value).Chunk(size).Select(chunk =>
        {
            var items = chunk.ToList();
            while (fill is not Undefined && items.Count < size) items.Add(fill);
            return (object?)new ListValue(items);
        });
        return new GeneratorValue(batches.ToList());
    }
}
