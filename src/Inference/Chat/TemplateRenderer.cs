using System.Text;

namespace Pipeline.Inference.Chat;

/// <summary>
/// One render of a parsed template: walks the statement tree, evaluating expressions with Python's
/// semantics (<see cref="PyOps"/>). Everything mutable (scopes, namespaces, loop state, output) belongs
/// to this object, which lives for one <see cref="ChatTemplate.Render"/> call.
/// </summary>
internal sealed partial class TemplateRenderer
{
    // Deep enough for real templates' recursive macros (JSON-schema walkers), shallow enough that a
    // runaway recursion fails with a message instead of overflowing the stack.
    private const int MaxCallDepth = 200;

    private int _callDepth;

    public TemplateRenderer(DateTimeOffset? now) => Now = now;

    /// <summary>The time <c>strftime_now</c> reports; null leaves <c>strftime_now</c> undefined.</summary>
    public DateTimeOffset? Now { get; }

    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    public string Render(IReadOnlyList<Stmt> body, TemplateScope root)
    {
        var output = new StringBuilder();
        Execute(body, root, output);
        return output.ToString();
    }

    private Flow Execute(IReadOnlyList<Stmt> body, TemplateScope scope, StringBuilder output)
    {
        foreach (var stmt in body)
        {
            Flow flow;
            try
            {
                flow = ExecuteOne(stmt, scope, output);
            }
            catch (ChatTemplateException e) when (!e.RaisedByTemplate && !e.HasPosition)
            {
                throw ChatTemplateException.At(e.Message, stmt.Line, stmt.Column);
            }

            if (flow != Flow.Normal) return flow;
        }

        return Flow.Normal;
    }

    private Flow ExecuteOne(Stmt stmt, TemplateScope scope, StringBuilder output)
    {
        EnsureStack();
        switch (stmt)
        {
            case TextStmt text:
                output.Append(text.Text);
                return Flow.Normal;
            case OutputStmt print:
                output.Append(PyOps.Str(Evaluate(print.Value, scope)));
                return Flow.Normal;
            case IfStmt conditional:
                return Execute(PyOps.IsTruthy(Evaluate(conditional.Test, scope)) ? conditional.Then : conditional.Otherwise, scope, output);
            case ForStmt loop:
                RunLoop(loop, Evaluate(loop.Iterable, scope), scope, 0, output);
                return Flow.Normal;
            case SetStmt set:
                Assign(set.Target, Evaluate(set.Value, scope), scope);
                return Flow.Normal;
            case SetBlockStmt setBlock:
            {
                var captured = new StringBuilder();
                Execute(setBlock.Body, new TemplateScope(scope), captured);
                object? value = captured.ToString();
                foreach (var filter in setBlock.Filters) value = ApplyFilter(filter, value, scope);
                Assign(setBlock.Target, value, scope);
                return Flow.Normal;
            }

            case MacroStmt macro:
                scope.Set(macro.Definition.Name, new MacroValue(macro.Definition, scope));
                return Flow.Normal;
            case CallBlockStmt callBlock:
                output.Append(PyOps.Str(EvaluateCall(callBlock.Call, scope, new MacroValue(callBlock.Caller, scope))));
                return Flow.Normal;
            case FilterBlockStmt filterBlock:
            {
                var captured = new StringBuilder();
                Execute(filterBlock.Body, new TemplateScope(scope), captured);
                object? value = captured.ToString();
                foreach (var filter in filterBlock.Filters) value = ApplyFilter(filter, value, scope);
                output.Append(PyOps.Str(value));
                return Flow.Normal;
            }

            case ScopeStmt with:
            {
                var inner = new TemplateScope(scope);
                var values = with.Assignments.Select(a => Evaluate(a.Value, scope)).ToList();
                for (int i = 0; i < values.Count; i++) Assign(with.Assignments[i].Key, values[i], inner);
                return Execute(with.Body, inner, output);
            }

            case BreakStmt:
                return Flow.Break;
            case ContinueStmt:
                return Flow.Continue;
            default:
                throw new ChatTemplateException($"unsupported statement {stmt.GetType().Name}");
        }
    }

    private void RunLoop(ForStmt loop, object? iterable, TemplateScope scope, int depth0, StringBuilder output)
    {
        var items = PyOps.ToList(iterable);
        if (loop.Filter is not null)
        {
            items = items.FindAll(item =>
            {
                var probe = new TemplateScope(scope);
                Assign(loop.Target, item, probe);
                return PyOps.IsTruthy(Evaluate(loop.Filter, probe));
            });
        }

        if (items.Count == 0)
        {
            Execute(loop.Otherwise, new TemplateScope(scope), output);
            return;
        }

        Func<object?, int, string>? recurse = null;
        if (loop.Recursive)
        {
            recurse = (children, depth) =>
            {
                EnterCall();
                try
                {
                    var nested = new StringBuilder();
                    RunLoop(loop, children, scope, depth, nested);
                    return nested.ToString();
                }
                finally
                {
                    _callDepth--;
                }
            };
        }

        var state = new LoopValue(items, depth0, recurse);
        for (int i = 0; i < items.Count; i++)
        {
            state.Index0 = i;
            var iteration = new TemplateScope(scope);
            Assign(loop.Target, items[i], iteration);
            iteration.Set("loop", state);
            if (Execute(loop.Body, iteration, output) == Flow.Break) break;
        }
    }

    // Deep nesting (recursive macros, nested expressions) must fail with a message on any thread's
    // stack size, never crash the process with a stack overflow.
    private static void EnsureStack()
    {
        if (!System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            throw new ChatTemplateException("maximum recursion depth exceeded: the template nests too deeply for this thread's stack");
        }
    }

    private void EnterCall()
    {
        if (++_callDepth > MaxCallDepth)
        {
            _callDepth = 0;
            throw new ChatTemplateException("maximum recursion depth exceeded in template macro calls");
        }
    }

    private static void Assign(AssignTarget target, object? value, TemplateScope scope)
    {
        if (target.Tuple is { } targets)
        {
            var items = PyOps.ToList(value);
            if (items.Count > targets.Count) throw new ChatTemplateException($"too many values to unpack (expected {targets.Count})");
            if (items.Count < targets.Count) throw new ChatTemplateException($"not enough values to unpack (expected {targets.Count}, got {items.Count})");
            for (int i = 0; i < targets.Count; i++) Assign(targets[i], items[i], scope);
        }
        else if (target.NamespaceAttribute is { } attribute)
        {
            if (scope.Get(target.Name!) is not NamespaceValue ns) throw new ChatTemplateException("Cannot assign attribute on non-namespace object");
            ns.Attributes[attribute] = value;
        }
        else
        {
            scope.Set(target.Name!, value);
        }
    }

    public object? Evaluate(Expr expr, TemplateScope scope)
    {
        EnsureStack();
        switch (expr)
        {
            case ConstExpr constant:
                return constant.Value;
            case NameExpr name:
                return scope.Get(name.Name);
            case ListExpr list:
            {
                var items = new List<object?>(list.Items.Count);
                foreach (var item in list.Items) items.Add(Evaluate(item, scope));
                return new ListValue(items, list.IsTuple);
            }

            case DictExpr dict:
            {
                var value = new DictValue();
                foreach (var pair in dict.Pairs) value.Set(Evaluate(pair.Key, scope), Evaluate(pair.Value, scope));
                return value;
            }

            case GetAttrExpr getAttr:
                return ValueAccess.GetAttribute(Evaluate(getAttr.Target, scope), getAttr.Attribute);
            case GetItemExpr getItem:
            {
                var target = Evaluate(getItem.Target, scope);
                if (getItem.Index is SliceExpr slice)
                {
                    return ValueAccess.Slice(target, EvaluateOptional(slice.Start, scope), EvaluateOptional(slice.Stop, scope), EvaluateOptional(slice.Step, scope));
                }

                return ValueAccess.GetItem(target, Evaluate(getItem.Index, scope));
            }

            case CallExpr call:
                return EvaluateCall(call, scope, null);
            case FilterExpr filter:
                return ApplyFilter(filter, Evaluate(filter.Target!, scope), scope);
            case TestExpr test:
                return TemplateTests.Apply(this, test.Name, Evaluate(test.Target, scope), EvaluateArguments(test.Args, scope, null));
            case NotExpr not:
                return !PyOps.IsTruthy(Evaluate(not.Operand, scope));
            case NegateExpr negate:
            {
                var operand = Evaluate(negate.Operand, scope);
                if (!negate.IsPlus) return PyOps.Negate(operand);
                PyOps.ThrowIfUndefined(operand);
                return PyOps.IsNumber(operand) ? operand : throw new ChatTemplateException($"bad operand type for unary +: '{PyOps.TypeName(operand)}'");
            }

            case BinaryExpr binary:
                return EvaluateBinary(binary, scope);
            case ConcatExpr concat:
            {
                var builder = new StringBuilder();
                foreach (var part in concat.Parts) builder.Append(PyOps.Str(Evaluate(part, scope)));
                return builder.ToString();
            }

            case CompareExpr compare:
                return EvaluateCompare(compare, scope);
            case ConditionalExpr conditional:
                if (PyOps.IsTruthy(Evaluate(conditional.Test, scope))) return Evaluate(conditional.Then, scope);
                return conditional.Otherwise is null
                    ? Undefined.WithMessage($"the inline if-expression on line {conditional.Line} evaluated to false and no else section was defined.")
                    : Evaluate(conditional.Otherwise, scope);
            default:
                throw ChatTemplateException.At($"unsupported expression {expr.GetType().Name}", expr.Line, expr.Column);
        }
    }

    private object? EvaluateOptional(Expr? expr, TemplateScope scope) => expr is null ? null : Evaluate(expr, scope);

    private object? EvaluateBinary(BinaryExpr binary, TemplateScope scope)
    {
        var left = Evaluate(binary.Left, scope);
        switch (binary.Operator)
        {
            case "and":
                return PyOps.IsTruthy(left) ? Evaluate(binary.Right, scope) : left;
            case "or":
                return PyOps.IsTruthy(left) ? left : Evaluate(binary.Right, scope);
        }

        var right = Evaluate(binary.Right, scope);
        return binary.Operator switch
        {
            "+" => PyOps.Add(left, right),
            "-" => PyOps.Subtract(left, right),
            "*" => PyOps.Multiply(left, right),
            "/" => PyOps.Divide(left, right),
            "//" => PyOps.FloorDivide(left, right),
            "%" => PyOps.Modulo(left, right),
            "**" => PyOps.Power(left, right),
            _ => throw new ChatTemplateException($"unknown operator '{binary.Operator}'"),
        };
    }

    private bool EvaluateCompare(CompareExpr compare, TemplateScope scope)
    {
        var left = Evaluate(compare.First, scope);
        foreach (var (op, rightExpr) in compare.Rest)
        {
            var right = Evaluate(rightExpr, scope);
            bool holds = op switch
            {
                "==" => PyOps.Equal(left, right),
                "!=" => !PyOps.Equal(left, right),
                "<" => PyOps.Compare(left, right, op) < 0,
                "<=" => PyOps.Compare(left, right, op) <= 0,
                ">" => PyOps.Compare(left, right, op) > 0,
                ">=" => PyOps.Compare(left, right, op) >= 0,
                "in" => PyOps.Contains(right, left),
                "notin" => !PyOps.Contains(right, left),
                _ => throw new ChatTemplateException($"unknown comparison '{op}'"),
            };
            if (!holds) return false;
            left = right;
        }

        return true;
    }
}
