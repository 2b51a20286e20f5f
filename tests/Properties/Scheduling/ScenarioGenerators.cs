using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;

namespace Pipeline.Properties.Scheduling;

/// <summary>FsCheck generators and shrinkers for scenarios.</summary>
public static class ScenarioGenerators
{
    /// <summary>Sentences of the reference stories: prompts the model knows.</summary>
    private static readonly string[] Corpus = File.ReadAllLines(Path.Combine(RepoPaths.Root, "tests", "Integration", "reference", "greedy.jsonl"))
        .SelectMany(line => JsonDocument.Parse(line).RootElement.GetProperty("completion_text").GetString()!
            .Split(['.', '\n', '!', '?'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        .Where(s => s.Length is > 2 and < 120)
        .Concat(["Once upon a time", "Lily", "Tom", ""])
        .Distinct()
        .ToArray();

    private static readonly string[] StopWords = ["Lily", ".", "the", "!", "\n", "She", "ball", "sad"];

    private static readonly CancelStage[] Stages = Enum.GetValues<CancelStage>();
    private static readonly FailStage[] Failures = Enum.GetValues<FailStage>();

    /// <summary>
    /// Story sentences joined to at least 400 characters (about 110 tokens of stories260K's
    /// vocabulary, at most about 250): a prompt that prefill cuts into two to four chunks.
    /// </summary>
    public static Gen<string> LongPrompt =>
        Gen.Elements(Corpus).ArrayOf(24).Select(sentences =>
        {
            var text = new System.Text.StringBuilder();
            foreach (var sentence in sentences)
            {
                if (text.Length >= 400) break;
                text.Append(sentence).Append(". ");
            }
            return text.ToString().TrimEnd();
        });

    public static Gen<RequestCase> Request(int maxTokens) =>
        from kind in Gen.Frequency((12, Gen.Constant(0)), (3, Gen.Constant(1)), (2, Gen.Constant(2)))
        from prompt in kind switch
        {
            1 => TextGenerators.PrintableRune.ArrayOf().Select(runes => string.Concat(runes.Take(40).Select(r => r.ToString()))),
            2 => LongPrompt,
            _ => Gen.Elements(Corpus),
        }
        from greedy in Gen.Frequency((1, Gen.Constant(true)), (2, Gen.Constant(false)))
        from temperature in Gen.Elements(0.5f, 0.8f, 1f, 1.3f)
        from topP in Gen.Elements(1f, 1f, 0.9f, 0.5f)
        from topK in Gen.Elements(0, 0, 5, 40)
        from minP in Gen.Elements(0f, 0f, 0.05f)
        from rep in Gen.Elements(1f, 1f, 1.3f)
        from seed in Gen.Choose(0, int.MaxValue).Select(s => (ulong)s)
        from tokens in Gen.Choose(1, maxTokens)
        from stop in Gen.Frequency((3, Gen.Constant(Array.Empty<string>())), (1, Gen.Elements(StopWords).ArrayOf().Select(a => a.Take(2).ToArray())))
        from arrival in Gen.Frequency((3, Gen.Constant(0)), (1, Gen.Choose(0, 15)))
        select new RequestCase(prompt, kind == 1, greedy ? 0f : temperature, topP, topK, minP, rep, seed, tokens, stop, arrival, null);

    /// <summary>
    /// Requests after the first may be cancelled (when <paramref name="cancelOthers"/>): about two
    /// thirds of them, each at one stage: by its reader after k tokens, or inside the pipeline at one of
    /// <see cref="CancelStage"/> (a request to be cut mid-prefill gets a multi-chunk prompt); or
    /// one of its model calls or its draw fails (<see cref="FailStage"/>).
    /// </summary>
    public static Gen<Scenario> Scenario(int maxRequests, int maxTokens, bool cancelOthers) =>
        from requests in Request(maxTokens).ArrayOf().Where(a => a.Length >= 1).Select(a => a.Take(maxRequests).ToArray())
        from cancellations in Gen.Choose(0, 2).ArrayOf(requests.Length)
        from cancelPoints in Gen.Choose(0, 8).ArrayOf(requests.Length)
        from stages in Gen.Choose(0, Stages.Length + Failures.Length).ArrayOf(requests.Length)
        from nths in Gen.Choose(1, 3).ArrayOf(requests.Length)
        from longPrompts in LongPrompt.ArrayOf(requests.Length)
        from maxBatch in Gen.Frequency((1, Gen.Choose(1, 4)), (2, Gen.Choose(1, 32)))
        from prefillBatch in Gen.Choose(1, 8)
        from capacities in Gen.Choose(1, 8).ArrayOf(6)
        from threads in Gen.Choose(1, 2)
        from scheduleSeed in Gen.Choose(0, int.MaxValue).Select(s => (ulong)s)
        from yieldPercent in Gen.Choose(0, 60)
        from delayPercent in Gen.Choose(0, 10)
        from splitPercent in Gen.Choose(0, 70)
        select new Scenario(
            requests.Select((r, i) => cancelOthers && requests.Length > 1 && i > 0 && cancellations[i] != 0
                ? stages[i] > Stages.Length
                    ? r with { FailAt = Failure(Failures[stages[i] - Stages.Length - 1], nths[i]) }
                    : Cancelled(r, stages[i] == Stages.Length ? null : Stages[stages[i]], cancelPoints[i], nths[i], longPrompts[i])
                : r).ToArray(),
            maxBatch, prefillBatch, capacities, threads, scheduleSeed, yieldPercent, delayPercent, splitPercent);

    /// <summary>
    /// Scenarios whose host has a small KV budget: between one and two times
    /// <see cref="LargestReservation"/> positions, so no request is refused as too large for it
    /// but a handful at once do not fit and must wait for each other.
    /// </summary>
    public static Gen<Scenario> WithKvBudget(Gen<Scenario> scenarios) =>
        from s in scenarios
        from positions in Gen.Choose(LargestReservation, 2 * LargestReservation)
        select s with { KvBudgetPositions = positions };

    /// <summary>
    /// More positions than any request of <see cref="Request"/> reserves with max tokens up to 64:
    /// the longest prompt is a <see cref="LongPrompt"/> (at most about 250 tokens; one of 196 came with
    /// 64 max tokens against a budget of 257 and was refused), then 40 runes of at most 4 byte tokens
    /// each; plus BOS, the dummy prefix and the max tokens: under 320.
    /// </summary>
    private const int LargestReservation = 320;

    // A prompt's first prefill call always comes; a short prompt has no second.
    private static StageFailure Failure(FailStage stage, int nth) => new(stage, stage == FailStage.PrefillCall ? 1 : nth);

    private static RequestCase Cancelled(RequestCase r, CancelStage? stage, int afterTokens, int nth, string longPrompt) => stage switch
    {
        null => r with { CancelAfterTokens = afterTokens },
        // Before the first or second chunk's call; a prompt of two chunks cut before its second ends at prefill's end instead.
        CancelStage.MidPrefill => r with { Prompt = longPrompt, Unicode = false, CancelAt = new StageCancel(CancelStage.MidPrefill, Math.Min(nth, 2)) },
        CancelStage.Queued or CancelStage.Tokenizing or CancelStage.Prefilled => r with { CancelAt = new StageCancel(stage.Value, 1) },
        _ => r with { CancelAt = new StageCancel(stage.Value, nth) },
    };

    public static Arbitrary<Scenario> Arbitrary(int maxRequests, int maxTokens, bool cancelOthers) =>
        Arb.From(Scenario(maxRequests, maxTokens, cancelOthers), Shrink);

    public static Arbitrary<Scenario> Arbitrary(Gen<Scenario> scenarios) => Arb.From(scenarios, Shrink);

    /// <summary>Fewer requests, fewer tokens, plainer options, capacity 1, batch 1, no schedule noise.</summary>
    public static IEnumerable<Scenario> Shrink(Scenario s)
    {
        for (int i = 0; i < s.Requests.Length && s.Requests.Length > 1; i++)
            yield return s with { Requests = [.. s.Requests[..i], .. s.Requests[(i + 1)..]] };
        for (int i = 0; i < s.Requests.Length; i++)
        {
            var r = s.Requests[i];
            if (r.MaxTokens > 1) yield return Replace(s, i, r with { MaxTokens = r.MaxTokens / 2 });
            if (r.Stop.Length > 0) yield return Replace(s, i, r with { Stop = [] });
            if (r.CancelAt is not null) yield return Replace(s, i, r with { CancelAt = null });
            if (r.FailAt is not null) yield return Replace(s, i, r with { FailAt = null });
            if (r.ArrivalMs > 0) yield return Replace(s, i, r with { ArrivalMs = 0 });
            if (r.TopP != 1 || r.TopK != 0 || r.MinP != 0 || r.RepetitionPenalty != 1)
                yield return Replace(s, i, r with { TopP = 1, TopK = 0, MinP = 0, RepetitionPenalty = 1 });
            if (r.Prompt.Length > 4) yield return Replace(s, i, r with { Prompt = FirstHalf(r.Prompt) });
        }
        if (s.YieldPercent + s.DelayPercent + s.SplitPercent > 0) yield return s with { YieldPercent = 0, DelayPercent = 0, SplitPercent = 0 };
        if (s.MaxBatch > 1) yield return s with { MaxBatch = 1 };
        if (s.MaxPrefillBatch > 1) yield return s with { MaxPrefillBatch = 1 };
        if (s.Threads > 1) yield return s with { Threads = 1 };
        if (s.Capacities.Any(c => c > 1)) yield return s with { Capacities = [1, 1, 1, 1, 1, 1] };
        if (s.KvBudgetPositions is { } kv && kv > LargestReservation) yield return s with { KvBudgetPositions = LargestReservation };
    }

    /// <summary>The first half of the text, cut between characters, never inside a surrogate pair.</summary>
    private static string FirstHalf(string text)
    {
        var runes = text.EnumerateRunes().ToArray();
        return string.Concat(runes.Take(runes.Length / 2).Select(r => r.ToString()));
    }

    private static Scenario Replace(Scenario s, int i, RequestCase r)
    {
        var copy = s.Requests.ToArray();
        copy[i] = r;
        return s with { Requests = copy };
    }
}
