using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace Pipeline.Inference.Chat;

/// <summary>
/// Splits template source into tokens the way jinja2's lexer does with the options transformers uses
/// (<c>trim_blocks=True</c>, <c>lstrip_blocks=True</c>, no trailing newline kept): <c>{%-</c>/<c>-%}</c>
/// strip all whitespace on that side; a block or comment tag alone on its line loses the indentation
/// before it (unless written <c>{%+</c>) and the newline after it (unless <c>+%}</c>).
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly ImmutableArray<string> Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    private readonly string _source;
    private readonly List<int> _lineStarts = [0];
    private readonly List<TemplateToken> _tokens = [];

    private TemplateLexer(string source)
    {
        // jinja2 normalises every newline to \n and drops one trailing newline (keep_trailing_newline=False).
        source = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (source.EndsWith('\n')) source = source[..^1];
        _source = source;
        for (int i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n') _lineStarts.Add(i + 1);
        }
    }

    public static List<TemplateToken> Tokenize(string source)
    {
        var lexer = new TemplateLexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    private (int Line, int Column) Position(int offset)
    {
        int line = _lineStarts.BinarySearch(offset);
        if (line < 0) line = ~line - 1;
        return (line + 1, offset - _lineStarts[line] + 1);
    }

    private ChatTemplateException Fail(string message, int offset)
    {
        var (line, column) = Position(offset);
        return ChatTemplateException.At(message, line, column);
    }

    private void Emit(TokenKind kind, string text, object? value, int offset)
    {
        var (line, column) = Position(offset);
        _tokens.Add(new TemplateToken(kind, text, value, line, column));
    }

    private void Run()
    {
        int pos = 0;
        bool lineStarting = true;
        while (pos < _source.Length)
        {
            int open = FindTagOpen(pos);
            if (open < 0)
            {
                Emit(TokenKind.Data, _source[pos..], null, pos);
                break;
            }

            char kind = _source[open + 1];
            char sign = open + 2 < _source.Length && _source[open + 2] is '-' or '+' ? _source[open + 2] : '\0';
            string text = _source[pos..open];
            int rawBodyStart = 0;
            bool isRaw = kind == '%' && TryMatchRawBegin(open, out rawBodyStart);
            text = ApplyLeftWhitespaceControl(text, sign, kind != '{', lineStarting);
            if (text.Length > 0) Emit(TokenKind.Data, text, null, pos);

            int inner = open + 2 + (sign == '\0' ? 0 : 1);
            if (isRaw)
            {
                pos = LexRaw(rawBodyStart, out lineStarting);
            }
            else if (kind == '#')
            {
                pos = LexComment(open, inner, out lineStarting);
            }
            else
            {
                Emit(kind == '%' ? TokenKind.BlockBegin : TokenKind.VariableBegin, kind == '%' ? "{%" : "{{", null, open);
                pos = LexTag(inner, kind == '%', out lineStarting);
            }
        }

        Emit(TokenKind.End, string.Empty, null, _source.Length);
    }

    private int FindTagOpen(int from)
    {
        for (int i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
        {
            if (_source[i + 1] is '{' or '%' or '#') return i;
        }

        return -1;
    }

    // The text before a tag: "-" strips all trailing whitespace; otherwise a block or comment tag
    // (not "{{") that is alone on its line drops the spaces and tabs before it, unless marked "+".
    private static string ApplyLeftWhitespaceControl(string text, char sign, bool lstripApplies, bool lineStarting)
    {
        if (sign == '-')
        {
            int end = text.Length;
            while (end > 0 && PyOps.IsSpace(text[end - 1])) end--;
            return text[..end];
        }

        if (sign == '+' || !lstripApplies) return text;
        int lineStart = text.LastIndexOf('\n') + 1;
        if (lineStart == 0 && !lineStarting) return text;
        if (lineStart == text.Length) return text;
        for (int i = lineStart; i < text.Length; i++)
        {
            if (!PyOps.IsSpace(text[i])) return text;
        }

        return text[..lineStart];
    }

    private bool TryMatchRawBegin(int open, out int bodyStart)
    {
        bodyStart = 0;
        int i = open + 2;
        if (i < _source.Length && _source[i] is '-' or '+') i++;
        i = SkipSpace(i);
        if (string.CompareOrdinal(_source, i, "raw", 0, 3) != 0) return false;
        i = SkipSpace(i + 3);
        if (string.CompareOrdinal(_source, i, "-%}", 0, 3) == 0)
        {
            bodyStart = SkipSpace(i + 3);
            return true;
        }

        if (string.CompareOrdinal(_source, i, "%}", 0, 2) == 0)
        {
            bodyStart = i + 2;
            return true;
        }

        return false;
    }

    private int SkipSpace(int i)
    {
        while (i < _source.Length && PyOps.IsSpace(_source[i])) i++;
        return i;
    }

    private int LexRaw(int bodyStart, out bool lineStarting)
    {
        for (int open = _source.IndexOf("{%", bodyStart, StringComparison.Ordinal); open >= 0; open = _source.IndexOf("{%", open + 2, StringComparison.Ordinal))
        {
            int i = open + 2;
            char sign = i < _source.Length && _source[i] is '-' or '+' ? _source[i] : '\0';
            if (sign != '\0') i++;
            i = SkipSpace(i);
            if (string.CompareOrdinal(_source, i, "endraw", 0, 6) != 0) continue;
            i = SkipSpace(i + 6);
            int end = MatchBlockEnd(i);
            if (end < 0) continue;
            string text = ApplyLeftWhitespaceControl(_source[bodyStart..open], sign, true, false);
            if (text.Length > 0) Emit(TokenKind.Data, text, null, bodyStart);
            lineStarting = _source[end - 1] == '\n';
            return end;
        }

        throw Fail("Missing end of raw directive", bodyStart);
    }

    // Matches "+%}", "-%}" with the whitespace after it, or "%}" with one newline after it
    // (trim_blocks); returns the offset after the match, or -1.
    private int MatchBlockEnd(int i)
    {
        if (string.CompareOrdinal(_source, i, "+%}", 0, 3) == 0) return i + 3;
        if (string.CompareOrdinal(_source, i, "-%}", 0, 3) == 0) return SkipSpace(i + 3);
        if (string.CompareOrdinal(_source, i, "%}", 0, 2) == 0) return i + 2 < _source.Length && _source[i + 2] == '\n' ? i + 3 : i + 2;
        return -1;
    }

    private int LexComment(int open, int inner, out bool lineStarting)
    {
        int close = _source.IndexOf("#}", inner, StringComparison.Ordinal);
        if (close < 0) throw Fail("Missing end of comment tag", open);
        int end;
        if (close > inner && _source[close - 1] == '-') end = SkipSpace(close + 2);
        else if (close > inner && _source[close - 1] == '+') end = close + 2;
        else end = close + 2 < _source.Length && _source[close + 2] == '\n' ? close + 3 : close + 2;
        lineStarting = _source[end - 1] == '\n';
        return end;
    }

    private int LexTag(int pos, bool isBlock, out bool lineStarting)
    {
        var brackets = new Stack<char>();
        while (true)
        {
            if (pos >= _source.Length) throw Fail(isBlock ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'", pos);
            if (brackets.Count == 0)
            {
                int end = isBlock ? MatchBlockEnd(pos) : MatchVariableEnd(pos);
                if (end >= 0)
                {
                    Emit(isBlock ? TokenKind.BlockEnd : TokenKind.VariableEnd, isBlock ? "%}" : "}}", null, pos);
                    lineStarting = _source[end - 1] == '\n';
                    return end;
                }
            }

            char c = _source[pos];
            if (PyOps.IsSpace(c))
            {
                pos++;
            }
            else if (char.IsAsciiDigit(c))
            {
                pos = LexNumber(pos);
            }
            else if (c == '_' || char.IsLetter(c))
            {
                int start = pos;
                while (pos < _source.Length && (_source[pos] == '_' || char.IsLetterOrDigit(_source[pos]))) pos++;
                Emit(TokenKind.Name, _source[start..pos], null, start);
            }
            else if (c is '\'' or '"')
            {
                pos = LexString(pos);
            }
            else
            {
                string? op = null;
                foreach (var candidate in Operators)
                {
                    if (string.CompareOrdinal(_source, pos, candidate, 0, candidate.Length) == 0)
                    {
                        op = candidate;
                        break;
                    }
                }

                if (op is null) throw Fail($"unexpected char '{c}'", pos);
                if (op is "(" or "[" or "{")
                {
                    brackets.Push(op[0]);
                }
                else if (op is ")" or "]" or "}")
                {
                    char expected = op switch { ")" => '(', "]" => '[', _ => '{' };
                    if (brackets.Count == 0) throw Fail($"unexpected '{op}'", pos);
                    if (brackets.Pop() != expected) throw Fail($"unexpected '{op}'", pos);
                }

                Emit(TokenKind.Operator, op, null, pos);
                pos += op.Length;
            }
        }
    }

    private int MatchVariableEnd(int i)
    {
        if (string.CompareOrdinal(_source, i, "-}}", 0, 3) == 0) return SkipSpace(i + 3);
        if (string.CompareOrdinal(_source, i, "}}", 0, 2) == 0) return i + 2;
        return -1;
    }

    private int LexNumber(int start)
    {
        int pos = start;
        while (pos < _source.Length && (char.IsAsciiDigit(_source[pos]) || _source[pos] == '_')) pos++;
        bool isFloat = false;
        if (pos + 1 < _source.Length && _source[pos] == '.' && char.IsAsciiDigit(_source[pos + 1]))
        {
            isFloat = true;
            pos++;
            while (pos < _source.Length && (char.IsAsciiDigit(_source[pos]) || _source[pos] == '_')) pos++;
        }

        if (pos < _source.Length && _source[pos] is 'e' or 'E')
        {
            int e = pos + 1;
            if (e < _source.Length && _source[e] is '+' or '-') e++;
            if (e < _source.Length && char.IsAsciiDigit(_source[e]))
            {
                isFloat = true;
                pos = e;
                while (pos < _source.Length && char.IsAsciiDigit(_source[pos])) pos++;
            }
        }

        string text = _source[start..pos];
        string digits = text.Replace("_", string.Empty, StringComparison.Ordinal);
        if (isFloat)
        {
            Emit(TokenKind.Float, text, double.Parse(digits, NumberStyles.Float, CultureInfo.InvariantCulture), start);
        }
        else
        {
            object value = long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long l) ? (object)l : System.Numerics.BigInteger.Parse(digits, CultureInfo.InvariantCulture);
            Emit(TokenKind.Integer, text, value, start);
        }

        return pos;
    }

    // A quoted string with Python's unicode-escape decoding (jinja2 decodes string literals that way).
    private int LexString(int start)
    {
        char quote = _source[start];
        var builder = new StringBuilder();
        int pos = start + 1;
        while (true)
        {
            if (pos >= _source.Length) throw Fail("unexpected end of string literal", start);
            char c = _source[pos];
            if (c == quote) break;
            if (c != '\\')
            {
                builder.Append(c);
                pos++;
                continue;
            }

            if (pos + 1 >= _source.Length) throw Fail("unexpected end of string literal", start);
            char e = _source[pos + 1];
            pos += 2;
            switch (e)
            {
                case 'n': builder.Append('\n'); break;
                case 't': builder.Append('\t'); break;
                case 'r': builder.Append('\r'); break;
                case '\\': builder.Append('\\'); break;
                case '\'': builder.Append('\''); break;
                case '"': builder.Append('"'); break;
                case 'a': builder.Append('\a'); break;
                case 'b': builder.Append('\b'); break;
                case 'f': builder.Append('\f'); break;
                case 'v': builder.Append('\v'); break;
                case '\n': break;
                case 'x': pos = AppendHexEscape(builder, pos, 2, start); break;
                case 'u': pos = AppendHexEscape(builder, pos, 4, start); break;
                case 'U': pos = AppendHexEscape(builder, pos, 8, start); break;
                case >= '0' and <= '7':
                {
                    int value = e - '0';
                    for (int k = 0; k < 2 && pos < _source.Length && _source[pos] is >= '0' and <= '7'; k++) value = (value * 8) + (_source[pos++] - '0');
                    builder.Append((char)value);
                    break;
                }

                default: builder.Append('\\').Append(e); break;
            }
        }

        Emit(TokenKind.String, _source[start..(pos + 1)], builder.ToString(), start);
        return pos + 1;
    }

    private int AppendHexEscape(StringBuilder builder, int pos, int digits, int start)
    {
        if (pos + digits > _source.Length || !int.TryParse(_source.AsSpan(pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code))
        {
            throw Fail("truncated \\x, \\u or \\U escape in string literal", start);
        }

        builder.Append(char.ConvertFromUtf32(code));
        return pos + digits;
    }
}
