namespace Pipeline.Inference.Tokenization.HuggingFace;

/// <summary>
/// The special ids a <c>tokenizer.json</c> post-processor puts around a single sequence:
/// <c>TemplateProcessing</c>, <c>BertProcessing</c>/<c>RobertaProcessing</c> (cls, sep),
/// <c>ByteLevel</c> (none) and <c>Sequence</c> of them.
/// </summary>
internal static class PostProcessor
{
    public static (int[] Prefix, int[] Suffix) Read(JsonComponent c)
    {
        var prefix = new List<int>();
        var suffix = new List<int>();
        if (!c.IsNull)
        {
            Add(c, prefix, suffix);
        }

        return ([.. prefix], [.. suffix]);
    }

    private static void Add(JsonComponent c, List<int> prefix, List<int> suffix)
    {
        switch (c.Type)
        {
            case "Sequence":
                foreach (var inner in c.Items("processors"))
                {
                    Add(inner, prefix, suffix);
                }

                break;
            case "ByteLevel":
                break;
            case "TemplateProcessing":
                bool sequenceSeen = false;
                foreach (var item in c.Items("single"))
                {
                    var specialToken = item.Child("SpecialToken");
                    if (!specialToken.IsNull)
                    {
                        string name = specialToken.RequiredString("id");
                        var entry = c.Child("special_tokens").Child(name);
                        if (entry.IsNull)
                        {
                            throw c.Child("special_tokens").Malformed($"does not define \"{name}\"");
                        }

                        var ids = entry.Items("ids").Select(i => i.Element.ValueKind == System.Text.Json.JsonValueKind.Number && i.Element.TryGetInt32(out int id)
                            ? id
                            : throw i.Malformed("is not a token id"));
                        (sequenceSeen ? suffix : prefix).AddRange(ids);
                    }
                    else if (!item.Child("Sequence").IsNull)
                    {
                        sequenceSeen = true;
                    }
                    else
                    {
                        throw item.Malformed("is neither a SpecialToken nor a Sequence");
                    }
                }

                break;
            case "BertProcessing" or "RobertaProcessing":
                prefix.Add(PairId(c.Child("cls")));
                suffix.Add(PairId(c.Child("sep")));
                break;
            default:
                throw c.Unsupported();
        }
    }

    // BERT-style processors write a token as ["[CLS]", 101].
    private static int PairId(JsonComponent c) =>
        c.Element.ValueKind == System.Text.Json.JsonValueKind.Array && c.Element.GetArrayLength() == 2 && c.Element[1].TryGetInt32(out int id)
            ? id
            : throw c.Malformed("is not a [token, id] pair");
}
