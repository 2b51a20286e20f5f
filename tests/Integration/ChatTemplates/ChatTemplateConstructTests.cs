using System.Text.Json.Nodes;
using Pipeline.Inference.Chat;

namespace Pipeline.Integration.ChatTemplates;

using ChatTemplate = Pipeline.Inference.Chat.ChatTemplate;

/// <summary>One construct at a time, with the output Python jinja2 gives (checked by hand against jinja2 3.1.6).</summary>
public sealed class ChatTemplateConstructTests
{
    private static string Render(string source, string messagesJson = "[]", IReadOnlyDictionary<string, object?>? variables = null) =>
        ChatTemplate.Parse(source).Render(new ChatTemplateInput
        {
            Messages = JsonNode.Parse(messagesJson)!,
            BosToken = "<s>",
            EosToken = "</s>",
            Variables = variables ?? new Dictionary<string, object?>(),
        });

    [Fact]
    public void Loop_variables_report_position_length_and_neighbours()
    {
        Assert.Equal(
            "1/0/3/2/True/False/3|2/1/2/1/False/False/3|3/2/1/0/False/True/3|",
            Render("{% for x in [1,2,3] %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}|{% endfor %}"));
        Assert.Equal("-2,1-3,2-,", Render("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"));
    }

    [Fact]
    public void Loop_with_a_filter_counts_only_the_kept_items_and_else_runs_when_nothing_is_kept()
    {
        Assert.Equal("0:1:4;3:2:4;6:3:4;9:4:4;", Render("{% for x in range(10) if x % 3 == 0 %}{{ x }}:{{ loop.index }}:{{ loop.length }};{% endfor %}"));
        Assert.Equal("empty", Render("{% for x in [1] if x > 5 %}{{ x }}{% else %}empty{% endfor %}"));
    }

    [Fact]
    public void Loop_controls_break_and_continue()
    {
        Assert.Equal("02", Render("{% for x in range(5) %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}"));
    }

    [Fact]
    public void Set_inside_a_loop_stays_in_the_loop_while_a_namespace_carries_state_out()
    {
        Assert.Equal("21", Render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}"));
        Assert.Equal("6 [1, 2, 3]", Render("{% set ns = namespace(count=0, items=[]) %}{% for x in [1,2,3] %}{% set ns.count = ns.count + x %}{% set ns.items = ns.items + [x] %}{% endfor %}{{ ns.count }} {{ ns.items }}"));
    }

    [Fact]
    public void Macros_take_defaults_keywords_varargs_and_a_caller()
    {
        Assert.Equal("Hello, Bob! Hello, Al? Hi, X!", Render("{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet('X', 'Hi') }}"));
        Assert.Equal("1(2, 3){'x': 4}", Render("{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}"));
        Assert.Equal("[v=6]", Render("{% macro row(x) %}[{{ caller(x * 2) }}]{% endmacro %}{% call(v) row(3) %}v={{ v }}{% endcall %}"));
    }

    [Fact]
    public void Macros_see_the_latest_value_of_the_scope_they_were_defined_in()
    {
        Assert.Equal("2", Render("{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ m() }}"));
    }

    [Fact]
    public void Whitespace_control_trims_blocks_strips_indentation_and_honours_minus_and_plus()
    {
        Assert.Equal("A\nB", Render("{% if true %}\nA\n{% endif %}\n  {% if true %}\nB{% endif %}"));
        Assert.Equal("xy z", Render("{{ 'x' }}   {{- 'y' -}}   {{ ' z' }}"));
        Assert.Equal("  kept\n", Render("  {%+ if true %}kept{% endif +%}\n\n"));
        Assert.Equal("  indent kept\n", Render("  {{ 'indent kept' }}\n\n"));
    }

    [Fact]
    public void Tojson_uses_python_json_dumps_spacing_and_keeps_key_order_and_unicode()
    {
        Assert.Equal("{\"b\": 1, \"a\": [1, 2.5, null, true], \"c\": \"é\\\"\"}", Render("{{ {'b': 1, 'a': [1, 2.5, none, true], 'c': 'é\"'}|tojson }}"));
        Assert.Equal("{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}", Render("{{ {'a': [1], 'b': {}}|tojson(indent=2) }}"));
        Assert.Equal("{\"a\": 2, \"b\": 1}", Render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}"));
    }

    [Fact]
    public void Tojson_of_input_json_keeps_ints_and_floats_apart()
    {
        Assert.Equal("{\"n\": 1, \"f\": 1.0, \"e\": 100000.0}", Render("{{ messages[0]|tojson }}", "[{\"n\": 1, \"f\": 1.0, \"e\": 1e5}]"));
    }

    [Fact]
    public void Slicing_works_on_strings_and_lists_with_negative_steps()
    {
        Assert.Equal("cba bcd ef [2, 3] [3, 2, 1] c", Render("{{ 'abc'[::-1] }} {{ 'abcdef'[1:4] }} {{ 'abcdef'[-2:] }} {{ [1,2,3,4][1:-1] }} {{ [1,2,3][::-1] }} {{ 'abc'[-1] }}"));
    }

    [Fact]
    public void Filters_behave_as_jinja2s()
    {
        Assert.Equal("x|Hello World-Foo|A-B|3|a,b|['a', 'b']|2|d|[1, 3]", Render(
            "{{ '  x  '|trim }}|{{ 'hello world-foo'|title }}|{{ 'a-b'|upper }}|{{ [1,2,3]|length }}|{{ [{'n': 'a'}, {'n': 'b'}]|map(attribute='n')|join(',') }}|"
            + "{{ ['a', 'A', 'b']|unique|list }}|{{ [{'t': 1}, {'t': 2}, {}]|selectattr('t', 'defined')|list|length }}|{{ none2|default('d') }}|{{ [1, 2, 3]|select('odd')|list }}"));
    }

    [Fact]
    public void String_and_dict_methods_behave_as_pythons()
    {
        Assert.Equal("['a', 'b'] True a_b x dflt ['k']", Render("{{ ' a  b '.split() }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'a-b'.replace('-', '_') }} {{ '\\n\\nx'.lstrip('\\n') }} {{ {}.get('k', 'dflt') }} {{ {'k': 1}.keys()|list }}"));
    }

    [Fact]
    public void Values_print_as_python_str()
    {
        Assert.Equal("None True 1.0 1e-05 [1, 'a', None, (1,), {'k': \"it's\"}]", Render("{{ none }} {{ true }} {{ 1.0 }} {{ 1e-5 }} {{ [1, 'a', none, (1,), {'k': \"it's\"}] }}"));
    }

    [Fact]
    public void Undefined_variables_are_empty_falsy_and_iterate_as_empty_but_fail_on_use()
    {
        Assert.Equal("[]False0", Render("[{{ tools }}]{{ tools is defined }}{% for t in tools %}x{% endfor %}{{ tools|length }}"));
        var error = Assert.Throws<ChatTemplateException>(() => Render("{{ tools.name }}"));
        Assert.StartsWith("'tools' is undefined", error.Message, StringComparison.Ordinal);
        Assert.False(error.RaisedByTemplate);
    }

    [Fact]
    public void Raise_exception_gives_exactly_the_templates_message()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}", "[{\"role\": \"system\", \"content\": \"x\"}]"));

        Assert.Equal("System role not supported", error.Message);
        Assert.True(error.RaisedByTemplate);
    }

    [Fact]
    public void Sandbox_refuses_to_mutate_lists()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render("{% set xs = [] %}{{ xs.append(1) }}"));
        Assert.Contains("unsafe", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Strftime_now_is_undefined_without_a_clock_and_formats_the_given_time()
    {
        const string Source = "{% if strftime_now is defined %}{{ strftime_now('%d %b %Y') }}{% else %}26 Jul 2024{% endif %}";
        var template = ChatTemplate.Parse(Source);

        Assert.Equal("26 Jul 2024", template.Render(new ChatTemplateInput { Messages = new JsonArray() }));
        Assert.Equal("07 Mar 2025", template.Render(new ChatTemplateInput { Messages = new JsonArray(), Now = new DateTimeOffset(2025, 3, 7, 14, 5, 9, TimeSpan.Zero) }));
    }

    [Fact]
    public void Content_given_as_a_list_of_parts_is_a_list_to_the_template()
    {
        Assert.Equal("Describe this.", Render("{% for p in messages[0].content %}{{ p.text }}{% endfor %}", "[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Describe\"}, {\"type\": \"text\", \"text\": \" this.\"}]}]"));
    }

    [Theory]
    [InlineData("{% if x %}unclosed", "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'. (line 1, column 19)")]
    [InlineData("line one\n{{ 1 + }}", "unexpected end of print statement (line 2, column 8)")]
    [InlineData("{% frobnicate %}", "Encountered unknown tag 'frobnicate'. (line 1, column 4)")]
    [InlineData("{% include 'x.jinja' %}", "the 'include' tag is not supported in chat templates (line 1, column 4)")]
    [InlineData("{{ 'abc }}", "unexpected end of string literal (line 1, column 4)")]
    [InlineData("{% for x in y %}{% endif %}", "Encountered unknown tag 'endif'. Jinja was looking for the following tags: 'endfor' or 'else'. The innermost block that needs to be closed is 'for'. (line 1, column 20)")]
    [InlineData("{% for x in y %}{% if x %}{% endfor %}", "Encountered unknown tag 'endfor'. You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'. (line 1, column 30)")]
    [InlineData("{% break %}", "'break' outside of a loop (line 1, column 4)")]
    [InlineData("{{ x ) }}", "unexpected ')' (line 1, column 6)")]
    [InlineData("{# never closed", "Missing end of comment tag (line 1, column 1)")]
    public void Parse_of_bad_syntax_names_the_problem_and_its_line_and_column(string source, string message)
    {
        var error = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Render_errors_name_the_line_of_the_failing_statement()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render("ok\n{{ 'a' + 1 }}"));
        Assert.Equal("can only concatenate str (not \"int\") to str (line 2, column 1)", error.Message);
    }

    [Fact]
    public void Parse_refuses_unknown_filters_and_tests_as_jinja2_does_at_compile_time()
    {
        Assert.Equal("No filter named 'frob'. (line 2, column 6)", Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("\n{{ 1|frob }}")).Message);
        Assert.Equal("No test named 'frob'. (line 1, column 9)", Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{{ 1 is frob }}")).Message);
    }

    [Fact]
    public void A_jinja2_filter_this_engine_lacks_parses_and_fails_only_when_rendered()
    {
        var template = ChatTemplate.Parse("{% if false %}{{ 'x'|wordwrap(3) }}{% endif %}ok{{ 'y'|striptags if false else '' }}");

        Assert.Equal("ok", template.Render(new ChatTemplateInput { Messages = new JsonArray() }));
        Assert.Contains("not supported", Assert.Throws<ChatTemplateException>(() => Render("{{ 'x'|wordwrap(3) }}")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Runaway_macro_recursion_fails_with_a_message_instead_of_overflowing_the_stack()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"));
        Assert.Contains("recursion", error.Message, StringComparison.Ordinal);
    }
}
