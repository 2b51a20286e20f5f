namespace Pipeline.Inference.Chat;

/// <summary>
/// A Hugging Face chat template (Jinja) parsed once and rendered many times, with the semantics
/// transformers gives it: Python jinja2 in an immutable sandbox with <c>trim_blocks</c> and
/// <c>lstrip_blocks</c>, the <c>loopcontrols</c> extension, <c>raise_exception</c>, <c>strftime_now</c>
/// and a <c>tojson</c> that keeps non-ASCII text and key order. The parsed tree is immutable, so one
/// instance may render on many threads at once.
/// </summary>
internal sealed class ChatTemplate
{
    private readonly IReadOnlyList<Stmt> _body;

    private ChatTemplate(string source, IReadOnlyList<Stmt> body)
    {
        Source = source;
        _body = body;
    }

    public string Source { get; }

    /// <summary>Parses <paramref name="source"/>; a syntax error or unsupported tag throws <see cref="ChatTemplateException"/> naming its line and column.</summary>
    public static ChatTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(source, TemplateParser.Parse(source));
    }

    /// <summary>Renders the conversation; throws <see cref="ChatTemplateException"/> when the template raises or fails.</summary>
    public string Render(ChatTemplateInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var renderer = new TemplateRenderer(input.Now);
        var globals = new TemplateScope(null);
        DefineGlobals(globals, input.Now);
        var root = new TemplateScope(globals);
        root.Set("messages", TemplateValueConverter.FromClr(input.Messages));
        root.Set("add_generation_prompt", input.AddGenerationPrompt);
        if (input.BosToken is not null) root.Set("bos_token", input.BosToken);
        if (input.EosToken is not null) root.Set("eos_token", input.EosToken);
        foreach (var (name, value) in input.Variables)
        {
            root.Set(name, TemplateValueConverter.FromClr(value));
        }

        try
        {
            return renderer.Render(_body, root);
        }
        catch (Exception e) when (e is OverflowException or InvalidCastException or ArgumentException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            // A value the operations above did not foresee: still a template failure, with its cause.
            throw new ChatTemplateException($"the template failed to render: {e.Message}", e);
        }
    }

    private static void DefineGlobals(TemplateScope globals, DateTimeOffset? now)
    {
        globals.Set("raise_exception", new FunctionValue("raise_exception", args =>
            throw new ChatTemplateException(PyOps.Str(args.Get(0, "message", string.Empty)), raisedByTemplate: true)));
        globals.Set("namespace", new FunctionValue("namespace", args =>
        {
            var ns = new NamespaceValue();
            foreach (var initial in args.Positional)
            {
                if (initial is not DictValue dict) throw new ChatTemplateException("namespace() takes a mapping as its positional argument");
                foreach (var (key, value) in dict.Entries) ns.Attributes[PyOps.Str(key)] = value;
            }

            foreach (var (key, value) in args.Keywords) ns.Attributes[key] = value;
            return ns;
        }));
        globals.Set("range", new FunctionValue("range", Range));
        globals.Set("dict", new FunctionValue("dict", args =>
        {
            var dict = new DictValue();
            if (args.Positional.Count > 0 && args.Positional[0] is DictValue source)
            {
                foreach (var (key, value) in source.Entries) dict.Set(key, value);
            }

            foreach (var (key, value) in args.Keywords) dict.Set(key, value);
            return dict;
        }));
        if (now is DateTimeOffset time)
        {
            globals.Set("strftime_now", new FunctionValue("strftime_now", args => PyStrftime.Format(time, PyOps.Str(args.Get(0, "format", string.Empty)))));
        }
    }

    // The sandbox caps range() at 100,000 items (jinja2's MAX_RANGE).
    private static ListValue Range(CallArguments args)
    {
        var numbers = args.Positional.Select(PyOps.ToLong).ToList();
        (long start, long stop, long step) = numbers.Count switch
        {
            1 => (0L, numbers[0], 1L),
            2 => (numbers[0], numbers[1], 1L),
            3 => (numbers[0], numbers[1], numbers[2]),
            _ => throw new ChatTemplateException($"range expected 1 to 3 arguments, got {numbers.Count}"),
        };
        if (step == 0) throw new ChatTemplateException("range() arg 3 must not be zero");
        var items = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (items.Count >= 100_000) throw new ChatTemplateException("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
            items.Add(i);
        }

        return new ListValue(items);
    }
}
