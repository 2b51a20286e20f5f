using System.Collections.Frozen;
namespace Pipeline.Inference.Chat;

/// <summary>jinja2's built-in tests (<c>x is defined</c>, <c>x is string</c>, <c>x is equalto y</c>, ...), with Python's type checks.</summary>
internal static class TemplateTests
{
    public static readonly FrozenSet<string> Names = new HashSet<string>(StringComparer.Ordinal)
    {
        "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number", "string", "mapping",
        "iterable", "sequence", "callable", "sameas", "escaped", "in", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan",
        "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "even", "odd", "divisibleby", "lower", "upper", "filter", "test",
    }.ToFrozenSet(StringComparer.Ordinal);

    public static bool Apply(TemplateRenderer renderer, string name, object? value, CallArguments args)
    {
        object? Other() => args.Get(0, "other", Undefined.Named("other"));
        switch (name)
        {
            case "defined": return value is not Undefined;
            case "undefined": return value is Undefined;
            case "none": return value is null;
            case "boolean": return value is bool;
            case "false": return value is false;
            case "true": return value is true;
            case "integer": return value is long or System.Numerics.BigInteger;
            case "float": return value is double;
            case "number": return PyOps.IsNumber(value);
            case "string": return PyOps.IsString(value);
            case "mapping": return value is DictValue;
            case "iterable": return value is Undefined or string or SafeString or ListValue or DictValue or GeneratorValue;
            case "sequence": return value is Undefined or string or SafeString or ListValue or DictValue;
            case "callable": return value is MacroValue or FunctionValue or BoundMethod || (value is LoopValue loop && loop.IsRecursive);
            case "sameas":
            {
                var other = Other();
                // CPython caches None, the booleans and small ints, so "is" holds for equal ones.
                return value switch
                {
                    null => other is null,
                    bool b => other is bool o && o == b,
                    long l => other is long m && l == m && l is >= -5 and <= 256,
                    _ => ReferenceEquals(value, other),
                };
            }

            case "escaped": return value is SafeString;
            case "in": return PyOps.Contains(args.Get(0, "seq", null), value);
            case "eq" or "equalto" or "==": return PyOps.Equal(value, Other());
            case "ne" or "!=": return !PyOps.Equal(value, Other());
            case "lt" or "lessthan" or "<": return PyOps.Compare(value, Other(), "<") < 0;
            case "le" or "<=": return PyOps.Compare(value, Other(), "<=") <= 0;
            case "gt" or "greaterthan" or ">": return PyOps.Compare(value, Other(), ">") > 0;
            case "ge" or ">=": return PyOps.Compare(value, Other(), ">=") >= 0;
            case "even": return PyOps.IsTruthy(PyOps.Modulo(value, 2L)) is false;
            case "odd": return PyOps.Equal(PyOps.Modulo(value, 2L), 1L);
            case "divisibleby": return PyOps.Equal(PyOps.Modulo(value, args.Get(0, "num", null)), 0L);
            case "lower": { string s = PyOps.Str(value); return s.Any(char.IsLetter) && !s.Any(char.IsUpper); }
            case "upper": { string s = PyOps.Str(value); return s.Any(char.IsLetter) && !s.Any(char.IsLower); }
            case "filter": return PyOps.AsString(value) is { } f && TemplateFilters.Names.Contains(f);
            case "test": return PyOps.AsString(value) is { } t && Names.Contains(t);
            default:
                _ = renderer;
                throw new ChatTemplateException($"No test named '{name}'.");
        }
    }
}
