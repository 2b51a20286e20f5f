using System.Text;

namespace Pipeline.Inference.Chat;

// Calls: argument evaluation (*args, **kwargs, caller), dispatch to macros, built-ins, methods and
// recursive loops, and macro invocation with Python-style parameter binding.
internal sealed partial class TemplateRenderer
{
    public CallArguments EvaluateArguments(Arguments args, TemplateScope scope, MacroValue? caller)
    {
        if (args.Positional.Count == 0 && args.Keywords.Count == 0 && args.Star is null && args.DoubleStar is null && caller is null)
        {
            return CallArguments.Empty;
        }

        var positional = new List<object?>(args.Positional.Count);
        foreach (var arg in args.Positional) positional.Add(Evaluate(arg, scope));
        if (args.Star is not null) positional.AddRange(PyOps.Iterate(Evaluate(args.Star, scope)));
        var keywords = new List<KeyValuePair<string, object?>>(args.Keywords.Count);
        foreach (var (key, value) in args.Keywords) keywords.Add(new KeyValuePair<string, object?>(key, Evaluate(value, scope)));
        if (args.DoubleStar is not null)
        {
            if (Evaluate(args.DoubleStar, scope) is not DictValue extra) throw new ChatTemplateException("argument after ** must be a mapping");
            foreach (var (key, value) in extra.Entries) keywords.Add(new KeyValuePair<string, object?>(PyOps.Str(key), value));
        }

        if (caller is not null) keywords.Add(new KeyValuePair<string, object?>("caller", caller));
        return new CallArguments(positional, keywords);
    }

    private object? EvaluateCall(CallExpr call, TemplateScope scope, MacroValue? caller)
    {
        var callee = Evaluate(call.Callee, scope);
        var args = EvaluateArguments(call.Args, scope, caller);
        return Invoke(callee, args);
    }

    public object? Invoke(object? callee, CallArguments args)
    {
        switch (callee)
        {
            case MacroValue macro:
                return InvokeMacro(macro, args);
            case FunctionValue function:
                return function.Invoke(args);
            case BoundMethod method:
                if (method.UnsafeInSandbox)
                {
                    throw new ChatTemplateException($"access to attribute '{method.Name}' of '{PyOps.TypeName(method.Receiver)}' object is unsafe.");
                }

                return ValueMethods.Call(method.Receiver, method.Name, args);
            case LoopValue loop:
                return loop.Recurse(args.Get(0, "iterable", Undefined.Named("iterable")));
            case Undefined undefined:
                throw undefined.Error();
            default:
                throw new ChatTemplateException($"'{PyOps.TypeName(callee)}' object is not callable");
        }
    }

    private string InvokeMacro(MacroValue macro, CallArguments args)
    {
        var definition = macro.Definition;
        var scope = new TemplateScope(macro.Closure);
        int count = definition.Parameters.Count;
        if (args.Positional.Count > count && !definition.TakesVarargs)
        {
            throw new ChatTemplateException($"macro '{definition.Name}' takes not more than {count} argument(s)");
        }

        var used = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            string name = definition.Parameters[i];
            if (i < args.Positional.Count)
            {
                scope.Set(name, args.Positional[i]);
            }
            else if (args.Has(-1, name))
            {
                scope.Set(name, args.Get(-1, name, null));
                used.Add(name);
            }
            else if (definition.Defaults[i] is { } fallback)
            {
                scope.Set(name, Evaluate(fallback, scope));
            }
            else
            {
                scope.Set(name, Undefined.WithMessage($"parameter '{name}' was not provided"));
            }
        }

        var extraKeywords = new DictValue();
        foreach (var (key, value) in args.Keywords)
        {
            if (used.Contains(key)) continue;
            if (string.Equals(key, "caller", StringComparison.Ordinal) && definition.TakesCaller)
            {
                scope.Set("caller", value);
                continue;
            }

            if (!definition.TakesKwargs) throw new ChatTemplateException($"macro '{definition.Name}' takes no keyword argument '{key}'");
            extraKeywords.Set(key, value);
        }

        if (definition.TakesKwargs) scope.Set("kwargs", extraKeywords);
        if (definition.TakesVarargs) scope.Set("varargs", new ListValue([.. args.Positional.Skip(count)], true));
        EnterCall();
        try
        {
            var output = new StringBuilder();
            Execute(definition.Body, scope, output);
            return output.ToString();
        }
        finally
        {
            _callDepth--;
        }
    }

    private object? ApplyFilter(FilterExpr filter, object? value, TemplateScope scope) =>
        TemplateFilters.Apply(this, filter.Name, value, EvaluateArguments(filter.Args, scope, null));
}
