using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;

namespace Pipeline.Integration.Server.Fuzz;

/// <summary>
/// FsCheck generators of HTTP requests for the OpenAI endpoints, well formed and broken: bodies are
/// built as JSON text (not as objects) so that they can hold what no serializer writes: numbers
/// beyond double, <c>-0</c>, <c>NaN</c>, duplicate keys, lone surrogate escapes, invalid UTF-8,
/// truncation. Most cases start from a well-formed request and break one to three things, so that
/// the server's checks are reached one field at a time rather than stopped at the first byte.
/// </summary>
public static class RequestGenerators
{
    private const string Completions = "/v1/completions", Chat = "/v1/chat/completions";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly JsonSerializerOptions RawUnicode = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The fields /v1/completions knows (or OpenAI documents for it).</summary>
    public static readonly string[] CompletionFields =
    [
        "model", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop", "seed", "stream",
        "stream_options", "logprobs", "echo", "suffix", "best_of", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias", "user",
    ];

    /// <summary>The fields /v1/chat/completions knows (or OpenAI documents for it).</summary>
    public static readonly string[] ChatFields =
    [
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop", "seed", "stream",
        "stream_options", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias", "user",
        "tools", "tool_choice", "parallel_tool_calls", "response_format",
    ];

    private static readonly string[] EdgeIntegers =
    [
        "0", "-1", "1", "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967296", "9007199254740993", "-9007199254740993",
        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
        "99999999999999999999999999999999999999", "-0", "1E2", "1e9", "100000000000000000000000000000000000000000000",
    ];

    private static readonly string[] EdgeFloats =
    [
        "-0.0", "0.0", "1e308", "-1e308", "1.7976931348623157e308", "1e309", "-1e309", "1e-400", "5e-324", "4.9e-324", "1.5", "0.5", "-0.5",
        "2.0000001", "1.9999999", "3.4028235e38", "3.4028236e38", "1e-45", "1e-38", "0.01", "0.0099999", "100.00001", "1e400", "-1e400", "0.1e1",
        "1.0E-2", "123456789.123456789",
    ];

    private static readonly string[] NumbersAsStrings = ["\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "\"1\"", "\"-0\"", "\"1e308\"", "\"0x10\"", "\"\"", "\" 1\""];

    /// <summary>Not JSON: any body holding one of these must be refused as a whole.</summary>
    private static readonly string[] BadLiterals = ["NaN", "Infinity", "-Infinity", "0x10", "01", "1.", ".5", "+1", "undefined", "True", "nul", "1e", "--1", "'x'"];

    private static readonly string[] Words =
    [
        "Once upon a time", "Lily", "", " ", "the cat sat", "Tom and Lily went to the park.", "\n\n", "héllo wörld", "日本語のテキスト", "🙂🚀", "a\u0000b",
        "<s>", "</s>", "<|im_start|>user", "\\u0000", "{\"json\": \"inside\"}", "\t\r\n", "ǅ", "\u200b\u200d", "\uFEFF", "Ω≈ç√∫",
    ];

    private static readonly string[] LoneSurrogateEscapes = ["\"\\ud800\"", "\"a\\udc00b\"", "\"\\ud800\\ud800\"", "\"x\\udbff\"", "\"\\udfff\\ud800\"", "\"ok \\uD83D\""];

    /// <summary>A JSON value as text with the name of its kind, e.g. ("int-edge", "9007199254740993").</summary>
    public readonly record struct Valued(string Kind, string Json);

    private sealed record Member(string Key, string Json);

    public static Gen<FuzzRequest> Request(string modelName) =>
        Gen.Frequency(
            (7, ValidCompletion(modelName)),
            (7, ValidChat(modelName)),
            (14, MutatedFields(modelName)),
            (6, MutatedMessages(modelName)),
            (4, RandomJson()),
            (4, DeepNesting(modelName)),
            (8, BrokenText(modelName)),
            (2, EmptyBody()),
            (2, Oversized()),
            (6, Routes(modelName)))
        .SelectMany(Envelope);

    /// <summary>How the body travels: mostly as JSON with the right key; sometimes another content type, chunked, or without the key.</summary>
    private static Gen<FuzzRequest> Envelope(FuzzRequest r) =>
        from contentType in Gen.Frequency(
            (16, Gen.Constant<string?>("application/json")),
            (1, Gen.Constant<string?>(null)),
            (1, Gen.Elements<string?>("text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "multipart/form-data; boundary=x", "image/png", ";;;", "application/json; charset=utf-16")))
        from chunked in Gen.Frequency((6, Gen.Constant(false)), (1, Gen.Constant(true)))
        from auth in Gen.Frequency((18, Gen.Constant(FuzzAuth.Key)), (1, Gen.Constant(FuzzAuth.NoKey)), (1, Gen.Constant(FuzzAuth.WrongKey)))
        select r.Body is null
            ? r with { ContentType = null, Chunked = false, Auth = auth, Tags = auth == FuzzAuth.Key ? r.Tags : [.. r.Tags, $"auth:{auth}"] }
            : r with
            {
                ContentType = contentType,
                Chunked = chunked,
                Auth = auth,
                Tags = [.. r.Tags, .. contentType == "application/json" ? System.Array.Empty<string>() : [$"content-type:{contentType ?? "none"}"],
                    .. chunked ? ["chunked"] : System.Array.Empty<string>(), .. auth == FuzzAuth.Key ? System.Array.Empty<string>() : [$"auth:{auth}"]],
            };

    // ---------------------------------------------------------------- well-formed requests

    private static Gen<FuzzRequest> ValidCompletion(string modelName) =>
        CompletionMembers(modelName).Select(m => Post(Completions, Object(m), "valid-completion", []));

    private static Gen<FuzzRequest> ValidChat(string modelName) =>
        ChatMembers(modelName).Select(m => Post(Chat, Object(m), "valid-chat", []));

    private static Gen<Member[]> CompletionMembers(string modelName) =>
        Members(
            Required("prompt", Prompt()),
            Sometimes(6, 1, "max_tokens", Gen.Choose(1, 6).Select(Int)),
            Sometimes(1, 2, "model", Gen.Constant(Quote(modelName))),
            Sometimes(1, 2, "temperature", Gen.Elements("0", "0.5", "1", "2", "1e-30", "-0")),
            Sometimes(1, 3, "top_p", Gen.Elements("0.1", "0.9", "1", "5e-324")),
            Sometimes(1, 4, "top_k", Gen.Choose(0, 600).Select(Int)),
            Sometimes(1, 4, "min_p", Gen.Elements("0", "0.05", "0.999")),
            Sometimes(1, 3, "n", Gen.Choose(1, 3).Select(Int)),
            Sometimes(1, 3, "stop", Stop()),
            Sometimes(1, 2, "seed", Gen.Elements(EdgeIntegers.Where(s => s.Length < 20 && !s.Contains('E') && !s.Contains('e')).ToArray())),
            Sometimes(2, 1, "stream", Gen.Elements("true", "true", "false")),
            Sometimes(1, 4, "stream_options", Gen.Elements("{\"include_usage\":true}", "{\"include_usage\":false}", "{}", "null")),
            Sometimes(1, 3, "logprobs", Gen.Choose(0, 5).Select(Int)),
            Sometimes(1, 6, "echo", Gen.Constant("false")),
            Sometimes(1, 6, "user", Gen.Elements(Words).Select(Quote)),
            Sometimes(1, 6, "presence_penalty", Gen.Elements("-2", "0", "1.5")),
            Sometimes(1, 6, "frequency_penalty", Gen.Elements("-2", "0", "1.5")),
            Sometimes(1, 4, "repetition_penalty", Gen.Elements("0.5", "1", "1.3", "0.01", "100")),
            Sometimes(1, 6, "logit_bias", Gen.Elements("{}", "{\"1\": 5}")),
            Sometimes(1, 8, "best_of", Gen.Constant("1")));

    private static Gen<Member[]> ChatMembers(string modelName) =>
        Members(
            Required("messages", Messages()),
            Sometimes(6, 1, "max_tokens", Gen.Choose(1, 6).Select(Int)),
            Sometimes(1, 4, "max_completion_tokens", Gen.Choose(1, 6).Select(Int)),
            Sometimes(1, 2, "model", Gen.Constant(Quote(modelName))),
            Sometimes(1, 2, "temperature", Gen.Elements("0", "0.7", "1", "2")),
            Sometimes(1, 3, "top_p", Gen.Elements("0.1", "0.95", "1")),
            Sometimes(1, 3, "n", Gen.Choose(1, 3).Select(Int)),
            Sometimes(1, 3, "stop", Stop()),
            Sometimes(1, 2, "seed", Gen.Choose(0, int.MaxValue).Select(Int)),
            Sometimes(2, 1, "stream", Gen.Elements("true", "true", "false")),
            Sometimes(1, 4, "stream_options", Gen.Elements("{\"include_usage\":true}", "{\"include_usage\":false}")),
            Sometimes(1, 3, "logprobs", Gen.Elements("true", "false")),
            Sometimes(1, 6, "top_logprobs", Gen.Choose(0, 5).Select(Int)),
            Sometimes(1, 6, "presence_penalty", Gen.Elements("-2", "0", "2")),
            Sometimes(1, 6, "frequency_penalty", Gen.Elements("-2", "0", "2")),
            Sometimes(1, 4, "repetition_penalty", Gen.Elements("0.8", "1", "1.2")),
            Sometimes(1, 6, "user", Gen.Elements(Words).Select(Quote)),
            Sometimes(1, 4, "tools", Gen.Elements(
                "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]",
                "[]")),
            Sometimes(1, 6, "tool_choice", Gen.Elements("\"auto\"", "\"none\"", "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}")),
            Sometimes(1, 6, "parallel_tool_calls", Gen.Elements("true", "false")),
            Sometimes(1, 4, "response_format", Gen.Elements("{\"type\":\"text\"}", "{\"type\":\"json_object\"}",
                "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\"}}}")));

    private static Gen<string> Prompt() => Gen.Frequency(
        (6, Gen.Elements(Words).Select(Quote)),
        (1, Gen.Elements(Words).ArrayOf().Where(a => a.Length is > 0 and <= 3).Select(a => Array(a.Select(Quote)))),
        (1, Gen.Choose(0, 511).ArrayOf().Where(a => a.Length is > 0 and <= 20).Select(a => Array(a.Select(Int)))),
        (1, Gen.Choose(1, 511).ArrayOf().Where(a => a.Length is > 0 and <= 8).ArrayOf().Where(a => a.Length is > 0 and <= 2)
            .Select(a => Array(a.Select(ids => Array(ids.Select(Int)))))));

    private static Gen<string> Stop() => Gen.OneOf(
        Gen.Elements(".", "\n", "Lily", "the", "🙂", "").Select(Quote),
        Gen.Elements(".", "\n", "Lily", "the", "🙂", "", "and").ArrayOf().Where(a => a.Length <= 4).Select(a => Array(a.Select(Quote))));

    private static Gen<string> Messages() =>
        Message().ArrayOf().Where(a => a.Length is > 0 and <= 4).Select(Array);

    private static Gen<string> Message() =>
        from role in Gen.Elements("system", "user", "assistant", "developer", "tool")
        from content in Content()
        from extra in Gen.Elements("", ",\"name\":\"bob\"", ",\"tool_call_id\":\"call_1\"",
            ",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]")
        select $"{{\"role\":{Quote(role)},\"content\":{content}{extra}}}";

    private static Gen<string> Content() => Gen.Frequency(
        (5, Gen.Elements(Words).Select(Quote)),
        (2, Gen.Elements(Words).ArrayOf().Where(a => a.Length <= 3)
            .Select(a => Array(a.Select(t => $"{{\"type\":\"text\",\"text\":{Quote(t)}}}")))),
        (1, Gen.Constant("null")));

    // ---------------------------------------------------------------- broken fields

    /// <summary>A well-formed request with one to three fields given a value of another kind, dropped, duplicated, or joined by an unknown one.</summary>
    private static Gen<FuzzRequest> MutatedFields(string modelName) =>
        from chat in Gen.Elements(false, true)
        from members in chat ? ChatMembers(modelName) : CompletionMembers(modelName)
        from count in Gen.Choose(1, 3)
        from mutations in FieldMutation(chat ? ChatFields : CompletionFields).ArrayOf(count)
        let applied = mutations.Aggregate((Members: members, Tags: new List<string>()), (acc, mutate) => mutate(acc.Members, acc.Tags))
        select Post(chat ? Chat : Completions, Object(applied.Members), "mutated-fields", applied.Tags);

    private delegate (Member[] Members, List<string> Tags) Mutation(Member[] members, List<string> tags);

    private static Gen<Mutation> FieldMutation(string[] fields) => Gen.Frequency(
        (10, from field in Gen.Elements(fields)
             from value in AnyValue(depth: 2)
             select (Mutation)((m, t) => (Set(m, field, value.Json), Add(t, $"{field}={value.Kind}")))),
        (2, from field in Gen.Elements(fields)
            select (Mutation)((m, t) => (m.Where(x => x.Key != field).ToArray(), Add(t, $"{field}=absent")))),
        (2, from field in Gen.Elements(fields)
            from value in AnyValue(depth: 1)
            select (Mutation)((m, t) => ([.. m, new Member(field, value.Json)], Add(t, "duplicate-key")))),
        (2, from key in Gen.Elements("", "x", "PROMPT", "Model", "max_tokens ", "\u0000", "ключ", "🙂", "__proto__", "constructor", "$ref", new string('k', 3000))
            from value in AnyValue(depth: 2)
            select (Mutation)((m, t) => ([.. m, new Member(key, value.Json)], Add(t, "unknown-field")))));

    /// <summary>A chat request whose messages break: a message of another kind, a bad role, bad content or content parts, duplicate keys.</summary>
    private static Gen<FuzzRequest> MutatedMessages(string modelName) =>
        from members in ChatMembers(modelName)
        from good in Message().ArrayOf().Where(a => a.Length is > 0 and <= 3)
        from at in Gen.Choose(0, good.Length - 1)
        from bad in BadMessage()
        let messages = Array(good.Take(at).Append(bad.Json).Concat(good.Skip(at + 1)))
        select Post(Chat, Object(Set(members, "messages", messages)), "mutated-messages", [bad.Kind]);

    private static Gen<Valued> BadMessage() => Gen.Frequency(
        (2, AnyValue(depth: 2).Select(v => new Valued($"message={v.Kind}", v.Json))),
        (3, from role in Gen.Frequency(
                (2, AnyValue(depth: 1)),
                (3, Gen.Elements("wizard", "", "USER", "user ", "System", "function", "assistant\u0000", "🙂").Select(s => new Valued("role-name", Quote(s)))))
            from content in Content()
            select new Valued($"role={role.Kind}", $"{{\"role\":{role.Json},\"content\":{content}}}")),
        (3, from content in Gen.Frequency(
                (2, AnyValue(depth: 2)),
                (3, Gen.Elements(
                    "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/y.png\"}}]", "[{\"text\":5}]", "[{\"type\":\"text\"}]", "[\"x\"]", "[null]", "[]",
                    "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"input_audio\",\"input_audio\":{}}]", "[[{\"type\":\"text\",\"text\":\"a\"}]]",
                    "{\"type\":\"text\",\"text\":\"a\"}").Select(s => new Valued("parts", s))))
            select new Valued($"content={content.Kind}", $"{{\"role\":\"user\",\"content\":{content.Json}}}")),
        (1, Gen.Elements(
            "{\"content\":\"no role\"}", "{\"role\":\"user\"}", "{\"role\":\"user\",\"role\":\"wizard\",\"content\":\"a\"}",
            "{\"role\":\"user\",\"content\":\"a\",\"content\":\"b\"}", "{\"role\":\"user\",\"content\":\"a\",\"name\":\"n\",\"name\":\"m\"}",
            "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"function\":{\"arguments\":{\"a\":1,\"a\":2}}}]}",
            "{\"role\":\"assistant\",\"content\":\"a\",\"tool_calls\":7}", "{}").Select(s => new Valued("message-shape", s))));

    // ---------------------------------------------------------------- arbitrary JSON

    /// <summary>Any JSON value, nested at most <paramref name="depth"/> deep, as text with its kind; a few are not JSON at all.</summary>
    public static Gen<Valued> AnyValue(int depth)
    {
        var scalar = Gen.Frequency(
            (2, Gen.Constant(new Valued("null", "null"))),
            (2, Gen.Elements(new Valued("bool", "true"), new Valued("bool", "false"))),
            (3, Gen.Choose(-5, 600).Select(i => new Valued("int", Int(i)))),
            (4, Gen.Elements(EdgeIntegers).Select(s => new Valued("int-edge", s))),
            (4, Gen.Elements(EdgeFloats).Select(s => new Valued("float-edge", s))),
            (2, Gen.Elements(NumbersAsStrings).Select(s => new Valued("number-as-string", s))),
            (1, Gen.Elements(BadLiterals).Select(s => new Valued("not-json", s))),
            (4, Gen.Elements(Words).Select(s => new Valued("string", Quote(s)))),
            (1, Gen.Elements(LoneSurrogateEscapes).Select(s => new Valued("lone-surrogate", s))),
            (1, Gen.Choose(1_000, 200_000).Select(n => new Valued("long-string", Quote(new string('a', n))))),
            (1, Gen.Choose(100, 20_000).Select(n => new Valued("long-array", Array(Enumerable.Range(0, n).Select(i => Int(i % 700)))))),
            (1, Gen.Choose(2, 70).Select(d => new Valued("nested", Nest(d, "1")))));
        if (depth <= 0) return scalar;
        var inner = AnyValue(depth - 1);
        return Gen.Frequency(
            (6, scalar),
            (1, inner.ArrayOf().Where(a => a.Length <= 4).Select(a => new Valued("array", Array(a.Select(v => v.Json))))),
            (1, from keys in Gen.Elements("a", "type", "text", "role", "content", "", "prompt").ArrayOf().Where(a => a.Length <= 4)
                from values in inner.ArrayOf(keys.Length)
                select new Valued("object", "{" + string.Join(",", keys.Zip(values, (k, v) => $"{Quote(k)}:{v.Json}")) + "}")));
    }

    /// <summary>A whole body of any JSON (or almost-JSON) value: an object of random keys, an array, a scalar.</summary>
    private static Gen<FuzzRequest> RandomJson() =>
        from path in Gen.Elements(Completions, Chat)
        from body in Gen.Frequency(
            (3, from keys in Gen.Elements(ChatFields.Concat(CompletionFields).Concat(["x", "", "messages[0]", "🙂"]).ToArray()).ArrayOf().Where(a => a.Length <= 8)
                from values in AnyValue(depth: 3).ArrayOf(keys.Length)
                select new Valued("random-object", "{" + string.Join(",", keys.Zip(values, (k, v) => $"{Quote(k)}:{v.Json}")) + "}")),
            (2, AnyValue(depth: 3)))
        select Post(path, body.Json, "random-json", [$"body={body.Kind}"]);

    /// <summary>Nesting on both sides of System.Text.Json's default depth limit of 64, as the body or inside a field.</summary>
    private static Gen<FuzzRequest> DeepNesting(string modelName) =>
        from depth in Gen.Frequency((3, Gen.Choose(1, 60)), (3, Gen.Choose(60, 70)), (2, Gen.Choose(100, 5_000)), (1, Gen.Choose(50_000, 200_000)))
        from place in Gen.Elements("body-array", "body-object", "prompt", "messages", "content", "tools", "stop", "stream_options", "response_format", "unknown")
        from leaf in Gen.Elements("1", "\"x\"", "null", "{}", "[]")
        let nested = place == "body-object" ? NestObjects(depth, leaf) : Nest(depth, leaf)
        let tags = (IReadOnlyList<string>)[depth < 64 ? "depth<64" : "depth>=64", $"deep-in:{place}"]
        select place switch
        {
            "body-array" or "body-object" => Post(Completions, nested, "deep-nesting", tags),
            "prompt" => Post(Completions, $"{{\"prompt\":{nested},\"max_tokens\":2}}", "deep-nesting", tags),
            "messages" => Post(Chat, $"{{\"messages\":{nested},\"max_tokens\":2}}", "deep-nesting", tags),
            "content" => Post(Chat, $"{{\"messages\":[{{\"role\":\"user\",\"content\":{nested}}}],\"max_tokens\":2}}", "deep-nesting", tags),
            "unknown" => Post(Chat, $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"Lily\",\"x\":{NestObjects(depth, leaf)}}}],\"max_tokens\":2}}", "deep-nesting", tags),
            _ => Post(Chat, $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"Lily\"}}],\"{place}\":{NestObjects(depth, leaf)},\"max_tokens\":2}}", "deep-nesting", tags),
        };

    // ---------------------------------------------------------------- broken bytes

    /// <summary>A well-formed body broken at the byte level: truncated, invalid UTF-8, a lone surrogate escape, JSON syntax errors, random bytes.</summary>
    private static Gen<FuzzRequest> BrokenText(string modelName) =>
        from chat in Gen.Elements(false, true)
        from members in chat ? ChatMembers(modelName) : CompletionMembers(modelName)
        let path = chat ? Chat : Completions
        let bytes = Encoding.UTF8.GetBytes(Object(members))
        from broken in Gen.Frequency(
            (2, Gen.Choose(0, bytes.Length - 1).Select(cut => new Broken("truncated", bytes[..cut]))),
            (3, from at in Gen.Choose(0, bytes.Length)
                from bad in Gen.Elements(InvalidUtf8)
                from inString in Gen.Elements(true, false)
                let cut = inString ? InsideAString(bytes, at) : at
                select new Broken($"invalid-utf8:{bad.Kind}", [.. bytes[..cut], .. bad.Bytes, .. bytes[cut..]])),
            (2, from escape in Gen.Elements(LoneSurrogateEscapes)
                from inKey in Gen.Elements(false, false, true)
                select new Broken(inKey ? "lone-surrogate:key" : "lone-surrogate:value",
                    Encoding.UTF8.GetBytes(inKey
                        ? Object(members)[..^1] + "," + escape + ":1}"
                        : Object(Set(members, chat ? "user" : "prompt", escape))))),
            (3, Gen.Elements(SyntaxBreaks).Select(e => new Broken($"json-syntax:{e.Kind}", Encoding.UTF8.GetBytes(e.Break(Object(members)))))),
            (1, Gen.Constant(new Broken("json-syntax:utf16", Encoding.Unicode.GetBytes(Object(members))))),
            (2, Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf().Where(a => a.Length is > 0 and <= 400).Select(a => new Broken("random-bytes", a))))
        select new FuzzRequest("POST", path, broken.Bytes, "application/json", false, FuzzAuth.Key, "broken-bytes", [broken.Kind]);

    private sealed record Broken(string Kind, byte[] Bytes);

    private static readonly (string Kind, byte[] Bytes)[] InvalidUtf8 =
    [
        ("FF", [0xFF]), ("C0-80-overlong", [0xC0, 0x80]), ("ED-A0-80-surrogate", [0xED, 0xA0, 0x80]), ("80-continuation", [0x80]),
        ("F4-90-beyond-10FFFF", [0xF4, 0x90, 0x80, 0x80]), ("E2-82-cut", [0xE2, 0x82]), ("F8-five-byte", [0xF8, 0x88, 0x80, 0x80, 0x80]),
    ];

    private static readonly (string Kind, Func<string, string> Break)[] SyntaxBreaks =
    [
        ("trailing-comma", s => s[..^1] + ",}"),
        ("comment", s => "/* c */" + s),
        ("line-comment", s => s[..^1] + "//x\n}"),
        ("single-quotes", s => s.Replace('"', '\'')),
        ("trailing-garbage", s => s + "xyz"),
        ("two-objects", s => s + s),
        ("bom", s => "\uFEFF" + s),
        ("nul-byte", s => s.Insert(s.Length / 2, "\0")),
        ("unquoted-key", s => "{prompt:1," + s[1..]),
        ("control-char-in-string", s => s.Replace(":\"", ":\"\u0001", StringComparison.Ordinal)),
        ("bad-escape", s => s.Replace(":\"", ":\"\\q", StringComparison.Ordinal)),
    ];

    /// <summary>The position just after the opening quote of the first string value at or after <paramref name="at"/> (or <paramref name="at"/> if none).</summary>
    private static int InsideAString(byte[] bytes, int at)
    {
        for (int i = at; i + 1 < bytes.Length; i++)
            if (bytes[i] == (byte)':' && bytes[i + 1] == (byte)'"') return i + 2;
        return at;
    }

    private static Gen<FuzzRequest> EmptyBody() =>
        from path in Gen.Elements(Completions, Chat)
        from body in Gen.Elements("", " ", "\n", "\r\n\t ", "null", "{}", "[]", "\"\"", "0", "{\"\":\"\"}")
        select Post(path, body, "empty-body", [body.Trim().Length == 0 ? "empty:whitespace" : $"empty:{body}"]);

    /// <summary>Bodies over the server's 1 MiB limit (the server drains them and answers 413).</summary>
    private static Gen<FuzzRequest> Oversized() =>
        from size in Gen.Choose((1 << 20) + 1, 3 << 20)
        from path in Gen.Elements(Completions, Chat)
        select Post(path, path == Chat
            ? $"{{\"messages\":[{{\"role\":\"user\",\"content\":{Quote(new string('a', size))}}}]}}"
            : $"{{\"prompt\":{Quote(new string('a', size))}}}", "oversized", []);

    // ---------------------------------------------------------------- other routes

    /// <summary>Every route with the wrong method, unknown routes (some looking like files), the GET routes with and without a body.</summary>
    private static Gen<FuzzRequest> Routes(string modelName) =>
        from route in Gen.Frequency(
            (3, from path in Gen.Elements("/v1/models", $"/v1/models/{modelName}", "/v1/models/gpt-4", "/v1/models/%FF", "/v1/models/..%2F..%2Fetc", "/health", "/metrics", "/health?x=%00")
                select ("GET", path)),
            (3, from method in Gen.Elements("GET", "PUT", "DELETE", "PATCH", "OPTIONS")
                from path in Gen.Elements(Completions, Chat, Completions + "/", "/V1/COMPLETIONS", "/v1/chat/completions?stream=true")
                select (method, path)),
            (1, from method in Gen.Elements("POST", "PUT", "DELETE")
                from path in Gen.Elements("/v1/models", "/health", "/metrics", $"/v1/models/{modelName}")
                select (method, path)),
            (2, from method in Gen.Elements("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
                from path in Gen.Elements("/", "/v1", "/v1/", "/v1//completions", "/v1/completions.json", "/v1/models.json", "/favicon.ico", "/v1/embeddings",
                    "/%2e%2e/%2e%2e/etc/passwd", "/v1/completions/" + new string('x', 2000), "/v1/chat/completions/extra")
                select (method, path)))
        from body in Gen.Frequency(
            (3, Gen.Constant<string?>(null)),
            (1, Gen.Constant<string?>("{\"prompt\":\"Lily\",\"max_tokens\":2}")),
            (1, Gen.Constant<string?>("junk")))
        select new FuzzRequest(route.Item1, route.Item2, body is null ? null : Encoding.UTF8.GetBytes(body), null, false, FuzzAuth.Key, "routes",
            [$"route:{route.Item1} {(route.Item2.Length > 40 ? route.Item2[..40] + "..." : route.Item2)}"]);

    // ---------------------------------------------------------------- JSON text

    private static FuzzRequest Post(string path, string json, string category, IReadOnlyList<string> tags) =>
        new("POST", path, Encoding.UTF8.GetBytes(json), "application/json", false, FuzzAuth.Key, category, tags);

    private static Gen<Member[]> Members(params Gen<Member?>[] members) =>
        Gen.CollectToArray(members).Select(all => all.OfType<Member>().ToArray());

    private static Gen<Member?> Required(string key, Gen<string> value) => value.Select(v => (Member?)new Member(key, v));

    /// <summary>The field with weight <paramref name="present"/> against <paramref name="absent"/>.</summary>
    private static Gen<Member?> Sometimes(int present, int absent, string key, Gen<string> value) =>
        Gen.Frequency((present, value.Select(v => (Member?)new Member(key, v))), (absent, Gen.Constant<Member?>(null)));

    private static Member[] Set(Member[] members, string key, string json) =>
        members.Any(m => m.Key == key) ? members.Select(m => m.Key == key ? m with { Json = json } : m).ToArray() : [.. members, new Member(key, json)];

    private static List<string> Add(List<string> tags, string tag)
    {
        tags.Add(tag);
        return tags;
    }

    private static string Object(IEnumerable<Member> members) => "{" + string.Join(",", members.Select(m => $"{Quote(m.Key)}:{m.Json}")) + "}";

    private static string Array(IEnumerable<string> items) => "[" + string.Join(",", items) + "]";

    private static string Nest(int depth, string leaf) => new string('[', depth) + leaf + new string(']', depth);

    private static string NestObjects(int depth, string leaf) =>
        new StringBuilder(depth * 6 + leaf.Length).Insert(0, "{\"a\":", depth).Append(leaf).Append('}', depth).ToString();

    private static string Quote(string s) => JsonSerializer.Serialize(s, RawUnicode);

    private static string Int(int i) => i.ToString(Inv);
}
